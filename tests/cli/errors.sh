#!/usr/bin/env bash
# Bad input gets exactly one error line naming the culprit and a non-zero
# status; none of these needs KVM.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# expect STATUS PATTERN -- ARGS...: run tinyvmm, check status and stderr.
expect() {
	local want=$1 pat=$2 out=$WORK/out err=$WORK/err st lines args
	shift 3
	args=$(printf '%s ' "$@" | cut -c1-120)
	"$TINYVMM" "$@" </dev/null >"$out" 2>"$err"
	st=$?
	lines=$(wc -l <"$err")
	if [ "$st" -ne "$want" ]; then
		fail "tinyvmm $args: exit status $st, expected $want (stderr: $(head -c 300 "$err"))"
	elif [ "$lines" -ne 1 ]; then
		fail "tinyvmm $args: $lines lines on stderr, expected exactly one: $(head -c 300 "$err")"
	elif ! grep -Eq -- "$pat" "$err"; then
		fail "tinyvmm $args: stderr '$(cat "$err")' does not match /$pat/"
	else
		echo "ok: tinyvmm $args-> $st: $(cat "$err")"
	fi
}

[ -x "$TINYVMM" ] || { fail "no tinyvmm binary at $TINYVMM"; finish; }

printf 'this is not a kernel, just some text\n%.0s' $(seq 100) >"$WORK/notakernel"
make_fake_bzimage "$WORK/fake-bzImage"
mkdir "$WORK/adir"

# Missing, unreadable, not a kernel.
expect 1 "cannot open kernel '$WORK/nope': No such file" -- "$WORK/nope"
expect 1 "'$WORK/adir'.*(Is a directory|not a Linux kernel)" -- "$WORK/adir"
expect 1 "'$WORK/notakernel' is not a Linux kernel" -- "$WORK/notakernel"
: >"$WORK/empty"
expect 1 "'$WORK/empty' is not a Linux kernel" -- "$WORK/empty"
cp "$WORK/fake-bzImage" "$WORK/noperm"
chmod 000 "$WORK/noperm"
if [ "$(id -u)" -eq 0 ]; then
	# root reads anything: drop to nobody to see a real EACCES.
	if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups \
			test -x "$TINYVMM"; then
		chmod 755 "$WORK"
		st=0
		setpriv --reuid=65534 --regid=65534 --clear-groups "$TINYVMM" "$WORK/noperm" \
			</dev/null >/dev/null 2>"$WORK/err" || st=$?
		if [ "$st" -eq 1 ] && grep -q "cannot open kernel '$WORK/noperm': Permission denied" "$WORK/err"; then
			echo "ok: unreadable kernel as nobody -> 1: $(cat "$WORK/err")"
		else
			fail "unreadable kernel: status $st, stderr: $(cat "$WORK/err")"
		fi
	else
		echo "note: unreadable-kernel case checked through the directory case only (cannot drop root here)"
	fi
else
	expect 1 "cannot open kernel '$WORK/noperm': Permission denied" -- "$WORK/noperm"
fi

# Host kinds.
expect 2 "^tinyvmm: error: --host-kind foo: unknown host kind \(expected vmx, svm or pvm\)" -- \
	--host-kind foo "$WORK/fake-bzImage"
long=clearcpuid=$(printf '1%.0s' $(seq 25))
expect 1 "^tinyvmm: error: --cmdline: clearcpuid= with the PVM \(no VT-x/AMD-V\) host's own features is longer than the 127 characters Linux reads" -- \
	--host-kind pvm --cmdline "$long" "$WORK/fake-bzImage"
kind=$(TINYVMM_KVM_DEVICE=/nonexistent "$TINYVMM" --print-host-kind)
if [ "$kind" = none ]; then
	echo "ok: --print-host-kind without a KVM device -> none"
else
	fail "--print-host-kind without a KVM device said '$kind', expected none"
fi

# Bad values.
expect 1 "^tinyvmm: error: -m 12Q: bad memory size" -- -m 12Q "$WORK/fake-bzImage"
expect 1 "-m 0: bad memory size" -- -m 0 "$WORK/fake-bzImage"
expect 1 "-c 0: bad vCPU count" -- -c 0 "$WORK/fake-bzImage"
expect 1 "slot 9 is already used" -- -s 9,virtio-blk,a -s 9,virtio-blk,b "$WORK/fake-bzImage"
expect 1 "cannot open initrd '$WORK/nord'" -- --initrd "$WORK/nord" "$WORK/fake-bzImage"
expect 1 "--cmdline: too long" -- --cmdline "$(head -c 5000 /dev/zero | tr '\0' x)" "$WORK/fake-bzImage"

# virtio-blk option values and images: rejected before the VM exists.
truncate -s 1M "$WORK/disk.img"
expect 1 "sectorsize=1000" -- -s 9,virtio-blk,"$WORK/disk.img",sectorsize=1000 "$WORK/fake-bzImage"
expect 1 "sectorsize=4096/512" -- -s 9,virtio-blk,"$WORK/disk.img",sectorsize=4096/512 \
	"$WORK/fake-bzImage"
expect 1 "range=1024/2048.*past the end of '$WORK/disk.img'" -- \
	-s 9,virtio-blk,"$WORK/disk.img",range=1024/2048 "$WORK/fake-bzImage"
expect 1 "range=abc" -- -s 9,virtio-blk,"$WORK/disk.img",range=abc "$WORK/fake-bzImage"
expect 1 "qsize=100" -- -s 9,virtio-blk,"$WORK/disk.img",qsize=100 "$WORK/fake-bzImage"
expect 1 "unknown option 'turbo'" -- -s 9,virtio-blk,"$WORK/disk.img",turbo "$WORK/fake-bzImage"
expect 1 "discard=on: expected discard=unmap or discard=ignore" -- \
	-s 9,virtio-blk,"$WORK/disk.img",discard=on "$WORK/fake-bzImage"
expect 1 "mq=17: expected queues from 1 to 16" -- -s 9,virtio-blk,"$WORK/disk.img",mq=17 \
	"$WORK/fake-bzImage"
expect 1 "unknown option 'direct=yes'" -- -s 9,virtio-blk,"$WORK/disk.img",direct=yes "$WORK/fake-bzImage"
# NBD exports: options that belong to image files, and a server that is not there.
expect 1 "direct: not for an NBD export" -- \
	-s 9,virtio-blk,"nbd+unix:///?socket=$WORK/nbd.sock",direct "$WORK/fake-bzImage"
expect 1 "aio=threads: not for an NBD export" -- \
	-s 9,virtio-blk,nbd://127.0.0.1/x,aio=threads "$WORK/fake-bzImage"
expect 1 "reconnect-delay=100: only for an NBD export" -- \
	-s 9,virtio-blk,"$WORK/disk.img",reconnect-delay=100 "$WORK/fake-bzImage"
expect 1 "timeout=5: only for an NBD export" -- \
	-s 9,virtio-blk,"$WORK/disk.img",timeout=5 "$WORK/fake-bzImage"
expect 1 "timeout=0: expected seconds from 1 to 3600" -- \
	-s 9,virtio-blk,nbd://127.0.0.1/x,timeout=0 "$WORK/fake-bzImage"
expect 1 "nbd\+unix:///\?socket=$WORK/nbd.sock: cannot connect" -- \
	-s 9,virtio-blk,"nbd+unix:///?socket=$WORK/nbd.sock" "$WORK/fake-bzImage"
expect 1 "only nbd:// and nbd\+unix:// URIs are supported" -- \
	-s 9,virtio-blk,nbds://127.0.0.1/x "$WORK/fake-bzImage"
# direct on a device with 4 KiB sectors wants sectorsize=4096 (a loop device, as root).
truncate -s 8M "$WORK/loop4k.img"
if loop=$(losetup --sector-size 4096 -f --show "$WORK/loop4k.img" 2>/dev/null); then
	expect 1 "direct: '$loop' needs sectorsize=4096 or more" -- \
		-s 9,virtio-blk,"$loop",direct "$WORK/fake-bzImage"
	# With it the image opens, and KVM is what fails.
	TINYVMM_KVM_DEVICE=$WORK/no-kvm expect 1 "cannot open $WORK/no-kvm" -- \
		-s 9,virtio-blk,"$loop",direct,sectorsize=4096 "$WORK/fake-bzImage"
	losetup -d "$loop"
else
	echo "note: no 4 KiB-sector loop device here (needs root and loop): the direct sectorsize check is NOT run"
fi
expect 1 "cannot open image '$WORK/missing.img': No such file" -- \
	-s 9,virtio-blk,"$WORK/missing.img" "$WORK/fake-bzImage"
expect 1 "'/dev/null' is neither a regular file nor a block device" -- \
	-s 9,virtio-blk,/dev/null "$WORK/fake-bzImage"
expect 1 "'$WORK/adir'(: Is a directory| is neither a regular file nor a block device)" -- \
	-s 9,virtio-blk,"$WORK/adir" "$WORK/fake-bzImage"
expect 1 "missing image path" -- -s 9,virtio-blk "$WORK/fake-bzImage"
truncate -s 1000 "$WORK/odd.img"
expect 1 "not a multiple" -- -s 9,virtio-blk,"$WORK/odd.img" "$WORK/fake-bzImage"

# Image locking: another process holding a POSIX or OFD lock on the image
# (here perl, whose fcntl(F_SETLK) locks conflict with tinyvmm's OFD locks)
# makes tinyvmm refuse it, before KVM.  hold_lock w|r FILE START LEN: hold a
# write or read lock on [START, START+LEN) (LEN 0: to the end) in the
# background until release_lock.
HOLDER=
hold_lock() {
	rm -f "$WORK/locked"
	perl -MFcntl -e '
		my ($kind, $file, $start, $len, $marker) = @ARGV;
		open(my $f, $kind eq "w" ? "+<" : "<", $file) or die "open $file: $!";
		fcntl($f, F_SETLK, pack("s s x4 q q i x4", $kind eq "w" ? F_WRLCK : F_RDLCK,
					SEEK_SET, $start, $len, 0)) or die "lock $file: $!";
		open(my $m, ">", $marker) or die; close($m);
		sleep 120;' "$1" "$2" "$3" "$4" "$WORK/locked" &
	HOLDER=$!
	for _ in $(seq 100); do
		[ -e "$WORK/locked" ] && return 0
		sleep 0.1
	done
	fail "the lock holder did not start"
}
release_lock() {
	kill "$HOLDER" 2>/dev/null
	wait "$HOLDER" 2>/dev/null
	HOLDER=
}
if command -v perl >/dev/null; then
	truncate -s 4M "$WORK/lock.img"
	export TINYVMM_KVM_DEVICE=$WORK/no-kvm
	inuse="virtio-blk: '$WORK/lock.img' is in use by another process"
	hold_lock w "$WORK/lock.img" 0 0
	expect 1 "$inuse \(locked for writing\)$" -- -s 9,virtio-blk,"$WORK/lock.img" "$WORK/fake-bzImage"
	expect 1 "$inuse \(locked for writing\)$" -- -s 9,virtio-blk,"$WORK/lock.img",ro "$WORK/fake-bzImage"
	release_lock
	# Gone with its holder: the image opens, and KVM is what fails.
	expect 1 "cannot open $WORK/no-kvm" -- -s 9,virtio-blk,"$WORK/lock.img" "$WORK/fake-bzImage"
	hold_lock r "$WORK/lock.img" 0 0
	expect 1 "$inuse \(locked for reading\)$" -- -s 9,virtio-blk,"$WORK/lock.img" "$WORK/fake-bzImage"
	expect 1 "cannot open $WORK/no-kvm" -- -s 9,virtio-blk,"$WORK/lock.img",ro "$WORK/fake-bzImage"
	release_lock
	# range= windows: only overlapping ones conflict (the holder has sectors 0-2047).
	hold_lock w "$WORK/lock.img" 0 $((2048 * 512))
	expect 1 "cannot open $WORK/no-kvm" -- -s 9,virtio-blk,"$WORK/lock.img",range=2048/2048 \
		"$WORK/fake-bzImage"
	expect 1 "$inuse \(locked for writing\)$" -- -s 9,virtio-blk,"$WORK/lock.img",range=2047/2 \
		"$WORK/fake-bzImage"
	release_lock
	# The same image twice in one tinyvmm would be two writers as well.
	expect 1 "$inuse \(locked for writing\)$" -- -s 9,virtio-blk,"$WORK/lock.img" \
		-s 10,virtio-blk,"$WORK/lock.img" "$WORK/fake-bzImage"
	unset TINYVMM_KVM_DEVICE
else
	echo "note: image locking cases not run (no perl to hold a lock)"
fi

# --no-seccomp is an option like any other (the filter itself needs a VM).
export TINYVMM_KVM_DEVICE=$WORK/no-kvm
expect 1 "cannot open $WORK/no-kvm" -- --no-seccomp "$WORK/fake-bzImage"
unset TINYVMM_KVM_DEVICE

# Usage errors.
expect 2 "unknown option '--frobnicate'" -- --frobnicate "$WORK/fake-bzImage"
expect 2 "unknown device 'virtio-net'" -- -s 9,virtio-net,x "$WORK/fake-bzImage"
expect 2 "no KERNEL given" --
expect 2 "option '-m' needs an argument" -- -m

# No KVM device: the kernel loads, then opening KVM fails.
export TINYVMM_KVM_DEVICE=$WORK/no-kvm
expect 1 "cannot open $WORK/no-kvm: No such file or directory" -- "$WORK/fake-bzImage"
unset TINYVMM_KVM_DEVICE

# --help and --version go to stdout with status 0.
if "$TINYVMM" --help >"$WORK/help" 2>&1 && grep -q '^Usage: tinyvmm' "$WORK/help" &&
   grep -q -- '--cmdline' "$WORK/help" && grep -q -- '--no-seccomp' "$WORK/help"; then
	echo "ok: --help"
else
	fail "--help"
fi
if "$TINYVMM" --version >"$WORK/ver" 2>&1 && grep -Eq '^tinyvmm [0-9]+\.[0-9]+' "$WORK/ver"; then
	echo "ok: --version: $(cat "$WORK/ver")"
else
	fail "--version"
fi

# images/make-guest-image.sh: the same rule (it checks its arguments before apt).
img_expect() {	# img_expect STATUS PATTERN ARGS...
	local want=$1 pat=$2 st
	shift 2
	"$top_srcdir/images/make-guest-image.sh" "$@" </dev/null >"$WORK/out" 2>"$WORK/err"
	st=$?
	if [ "$st" -ne "$want" ] || [ "$(wc -l <"$WORK/err")" -ne 1 ] || ! grep -Eq -- "$pat" "$WORK/err"; then
		fail "make-guest-image.sh $*: status $st (want $want), stderr: $(head -c 300 "$WORK/err")"
	else
		echo "ok: make-guest-image.sh $* -> $st: $(cat "$WORK/err")"
	fi
}
img_expect 1 "SIZE_MB 'big' is not a whole number" "$WORK/g.img" big
img_expect 1 "SIZE_MB must be at least 128 \(got 64\)" "$WORK/g.img" 64
img_expect 1 "--run script '$WORK/nope.sh' is not a readable file" --run "$WORK/nope.sh" "$WORK/g.img" 192
img_expect 1 "OUT '$WORK/adir' is empty or a directory" "$WORK/adir" 192
img_expect 1 "directory '$WORK/nodir' \(for OUT\) does not exist" "$WORK/nodir/g.img" 192
img_expect 1 "unknown option '--frobnicate'" --frobnicate "$WORK/g.img" 192
img_expect 2 "^usage: " "$WORK/g.img"
[ ! -e "$WORK/g.img" ] || fail "make-guest-image.sh left a file behind after an error"
finish
