# shellcheck shell=bash
# Helpers for the workload tests (sourced after tests/lib.sh): a Linux guest with
# real user space (images/make-guest-image.sh, /run.sh = tests/workload/guest.sh)
# drives the device; the host checks what landed in the image files.

GUEST_SH=$top_srcdir/tests/workload/guest.sh
GUEST_IMAGE_MB=192

# The test image, built once into the cache by scripts/test.sh (or by hand:
# images/make-guest-image.sh --run tests/workload/guest.sh --cache 192).
guest_image() {
	if [ -n "${TINYVMM_GUEST_IMAGE:-}" ]; then
		echo "$TINYVMM_GUEST_IMAGE"
	else
		"$top_srcdir/images/make-guest-image.sh" --run "$GUEST_SH" --cache --print-path \
			"$GUEST_IMAGE_MB" 2>/dev/null
	fi
}

need_kernel vmlinux
need_kvm
GIMG=$(guest_image) || GIMG=
[ -n "$GIMG" ] && [ -s "$GIMG" ] ||
	skip "the workload guest image ${GIMG:-?} is not built (images/make-guest-image.sh --run tests/workload/guest.sh --cache $GUEST_IMAGE_MB)"
for t in fio e2fsck debugfs cmp sha256sum; do
	PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null || skip "$t is not installed on the host"
done
export PATH=$PATH:/sbin:/usr/sbin

# The guest's command line: root is the test image, read-only; quiet, as every
# console line costs exits (the kernel still prints its errors).
wl_cmdline() {	# wl_cmdline WORDS...
	echo "console=ttyS0 root=/dev/vda ro panic=-1 quiet $*"
}

# wl_boot NAME "CMDLINE WORDS" TINYVMM-ARGS...: boot the test image, console in
# $WORK/NAME.console, tinyvmm's stderr in $WORK/NAME.stderr, status in WL_STATUS.
wl_boot() {
	local name=$1 words=$2
	shift 2
	WL_STATUS=0
	RUN_TIMEOUT=${RUN_TIMEOUT:-300} run_tinyvmm --stats -m 256M \
		-s 2,virtio-blk,"$GIMG",ro --cmdline "$(wl_cmdline "$words")" \
		"$@" "$KDIR/vmlinux" >"$WORK/$name.console" 2>"$WORK/$name.stderr" || WL_STATUS=$?
	echo "--- $name: guest lines ---"
	grep -E '^(verify|ext4-|guest|crash|fio|error)|Kernel panic|EXT4-fs error|I/O error' \
		"$WORK/$name.console" | grep -v '^ext4-sum:' | head -60
	echo "--- $name: tinyvmm stderr ---"
	cat "$WORK/$name.stderr"
	if [ "$WL_STATUS" -eq 125 ]; then
		fail "$name: the nested-KVM harness failed (see above)"
		finish
	fi
}

# rand_file FILE MIB: MIB of random bytes.
rand_file() {
	head -c $(($2 * 1048576)) /dev/urandom >"$1"
}

# wl_check_tree CONSOLE IMAGE WHAT: guest.sh's ext4-write tree, checked from the
# host.  The checksums the guest printed on CONSOLE must cover the whole tree;
# e2fsck -fn must find IMAGE (called WHAT in messages) clean; every file
# debugfs reads out of it must match.  Leaves the count in nsums.
wl_check_tree() {
	sed -n 's/^ext4-sum: //p' "$1" | tr -d '\r' >"$WORK/sums"
	nsums=$(wc -l <"$WORK/sums")
	[ "$nsums" -ge 210 ] ||
		fail "the guest printed $nsums checksums, expected the whole tree (210 or more)"
	if e2fsck -fn "$2" >"$WORK/e2fsck.out" 2>&1; then
		echo "host: e2fsck -fn on $3: clean ($(tail -n 1 "$WORK/e2fsck.out"))"
	else
		cat "$WORK/e2fsck.out"
		fail "host e2fsck -fn found problems in the file system in $3"
	fi
	rm -rf "$WORK/out"
	mkdir -p "$WORK/out"
	debugfs -R "rdump /tree $WORK/out" "$2" >"$WORK/debugfs.out" 2>&1 ||
		fail "debugfs rdump /tree failed: $(tail -n 2 "$WORK/debugfs.out")"
	if (cd "$WORK/out" && sha256sum -c --quiet "$WORK/sums") >"$WORK/sumcheck.out" 2>&1; then
		echo "host: $nsums files read out of $3 match the guest's checksums"
	else
		head -n 10 "$WORK/sumcheck.out"
		fail "files read out of $3 on the host differ from what the guest wrote"
	fi
}
