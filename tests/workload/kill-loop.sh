#!/usr/bin/env bash
# Kill tinyvmm with SIGKILL at random points under a writing Linux guest and check
# the disk image each time (run by tests/workload/crash.sh, where KVM is: directly or
# inside the nested runner's L1).
#
# Usage: kill-loop.sh MODE POINTS SEED OUTDIR
#        kill-loop.sh check NAME SEED OUTDIR DISK
#   MODE dsync   records written with O_DIRECT|O_DSYNC to a writethru disk
#        fsync   records written with write + fsync to a writeback disk
#        ext4    ext4 under a write-heavy guest; the copy of each killed image must be
#                clean after journal recovery (e2fsck -E journal_only, then e2fsck -fn),
#                and the last directory the guest synced must be whole
#        cut-dsync, cut-fsync   one power cut of the nested runner's L1 instead of a
#                kill (CUT_DISK, CUT_MARK: tests/workload/powercut.sh); "check" then
#                checks NAME's records in DISK on the host
#        cut-xq  the same with 2 vCPUs and 2 queues on a writeback disk: each record
#                written (O_DIRECT) on vCPU 0's queue, then flushed on vCPU 1's
#   POINTS kill points; SEED seeds the points (printed, so a run can be repeated)
# Environment: TINYVMM, KERNEL (vmlinux), GIMG (test image), GUEST_SH.
# Exit status: 0 when every point passed.
set -uo pipefail
mode=$1 points=$2 seed=$3 out=$4
: "${GUEST_SH:?}"
[ "$mode" = check ] || : "${TINYVMM:?}" "${KERNEL:?}" "${GIMG:?}"
export PATH=$PATH:/sbin:/usr/sbin
failures=0
# Each mode its own sequence of points from the one seed.
case $mode in dsync) RANDOM=$seed ;; fsync) RANDOM=$((seed + 1)) ;; *) RANDOM=$((seed + 2)) ;; esac

bad() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# A fifo nobody writes: read -t on it is a sleep without a fork.
tick=$(mktemp -u "${TMPDIR:-/tmp}/kill-loop-tick.XXXXXX")
mkfifo "$tick" && exec {TICK}<>"$tick" || { echo "kill-loop: cannot make a fifo in ${TMPDIR:-/tmp}"; exit 1; }
rm -f "$tick"

# start_vm NAME DISK-ARGS CMDLINE-WORDS: tinyvmm in the background, pid in VM_PID.
start_vm() {
	: >"$out/$1.console"
	"$TINYVMM" -m 256M ${VM_CPUS:+-c "$VM_CPUS"} -s 2,virtio-blk,"$GIMG",ro -s 3,virtio-blk,"$2" \
		--cmdline "console=ttyS0 root=/dev/vda ro panic=-1 quiet $3" "$KERNEL" \
		</dev/null >"$out/$1.console" 2>"$out/$1.stderr" &
	VM_PID=$!
}

# wait_line NAME PATTERN SECS: until the console has a line matching PATTERN (0),
# tinyvmm ended (1), or SECS passed (2). Bash builtins only: in the nested runner's
# L1 every fork is emulated, and a polling loop of greps would take the CPU the
# guest needs.
wait_line() {
	local fd line buf='' end=$((SECONDS + $3)) rc=2
	exec {fd}<"$out/$1.console"
	while [ $SECONDS -lt $end ]; do
		if IFS= read -r -u "$fd" line; then
			line=$buf$line buf=''
			[[ ${line%$'\r'} =~ $2 ]] && { rc=0; break; }
			continue
		fi
		buf+=$line	# a line without its newline yet
		kill -0 "$VM_PID" 2>/dev/null || { rc=1; break; }
		read -r -t 0.05 -u "$TICK" _
	done
	exec {fd}<&-
	return $rc
}

# not_seen NAME LINE RC: the guest never printed LINE (RC: wait_line's status).
not_seen() {
	tail -n 5 "$out/$1.console" "$out/$1.stderr"
	bad "$1: no '$2' from the guest ($([ "$3" -eq 1 ] && echo 'tinyvmm ended' || echo 'timed out'))"
}

kill_vm() {	# kill_vm DELAY_MS
	sleep "$(printf '0.%03d' "$1")"
	kill -KILL "$VM_PID" 2>/dev/null
	wait "$VM_PID" 2>/dev/null
}

# check_records NAME SEED DISK: every record up to the last "ack N" on NAME's console
# must be whole in DISK. Prints the summary as CHECKED.
check_records() {
	local name=$1 s=$2 disk=$3 k n off extra=0
	# Serial lines end in CR LF; a last line without its LF may be cut short, but
	# "ack 1" cut from "ack 12" still names a record that was acknowledged ("ack "
	# with no digit yet names none).
	k=$(tr -d '\r' <"$out/$name.console" | grep -aE '^ack [0-9]+$' | tail -n 1 | cut -d' ' -f2)
	if [ -z "$k" ]; then
		echo "--- $name.console, last lines (cat -A) ---"
		tail -n 12 "$out/$name.console" | cat -A | cut -c1-160
		bad "$name: the guest acknowledged no record"
		return 1
	fi
	: >"$out/$name.expect"
	for ((n = 0; n <= k + 8; n++)); do
		sh "$GUEST_SH" print-record "$s" "$n" >>"$out/$name.expect"
	done
	if ! off=$(cmp -n $(((k + 1) * 4096)) "$out/$name.expect" "$disk" 2>&1); then
		off=$(sed -n 's/.* byte \([0-9]*\).*/\1/p' <<<"$off")
		bad "$name (seed $s): record $(((${off:-1} - 1) / 4096)) was acknowledged (last ack $k) but is not whole in the image"
		return 1
	fi
	# Records past the last ack the guest printed (in flight, or acked as it died).
	for ((n = k + 1; n <= k + 8; n++)); do
		cmp -s -n 4096 -i $((n * 4096)):$((n * 4096)) "$out/$name.expect" "$disk" || break
		extra=$((extra + 1))
	done
	rm -f "$out/$name.expect"
	CHECKED="last ack $k; records 0-$k intact, $extra more on disk"
}

records_point() {	# records_point P
	local p=$1 s=$((seed * 100 + p)) t=$((1 + RANDOM % 30)) d=$((RANDOM % 300))
	local name=$mode-$p disk=$out/$mode-$p.img cache=writethru rc=0
	[ "$mode" = fsync ] && cache=writeback s=$((s + 50))
	truncate -s 16M "$disk"
	start_vm "$name" "$disk,$cache" "wl=crash-$mode seed=$s"
	wait_line "$name" "^ack $t\$" 240 || rc=$?
	kill_vm "$d"
	if [ $rc -ne 0 ]; then
		not_seen "$name" "ack $t" $rc
		return
	fi
	check_records "$name" "$s" "$disk" || return
	echo "crash $mode point $p/$points: seed $s, kill $d ms after ack $t: $CHECKED"
	rm -f "$disk"
}

# cut_point: a power cut of the machine tinyvmm runs on (the nested runner's L1, with
# CUT_DISK its virtio disk): what tinyvmm did not flush out of L1's page cache is lost.
# The host checks the records afterwards (check mode, on the file behind CUT_DISK).
cut_point() {
	local m=${mode#cut-} s=$((seed * 100 + 99)) t=$((5 + RANDOM % 30)) d=$((RANDOM % 300))
	local cache=writethru rc=0
	: "${CUT_DISK:?}" "${CUT_MARK:?}"
	[ "$m" = dsync ] || cache=writeback
	[ "$m" = xq ] && VM_CPUS=2
	# No background writeback in L1: only what tinyvmm flushes reaches the disk.
	echo 0 >/proc/sys/vm/dirty_writeback_centisecs
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	start_vm "$mode" "$CUT_DISK,$cache" "wl=crash-$m seed=$s"
	wait_line "$mode" "^ack $t\$" 240 || rc=$?
	if [ $rc -ne 0 ]; then
		not_seen "$mode" "ack $t" $rc
		return
	fi
	sleep "$(printf '0.%03d' "$d")"
	echo "crash $mode: seed $s, power cut $d ms after ack $t"
	echo 0 >"$CUT_MARK"
	echo b >/proc/sysrq-trigger
	sleep 60
	bad "$mode: L1 still runs 60 s after sysrq-b"
}

dir_entries() {	# dir_entries IMAGE DIR: how many entries DIR has in the ext4 IMAGE
	debugfs -R "ls -p $2" "$1" 2>/dev/null | grep -c '^/'
}

# ext4_check_churn P NAME COPY T D: the guest printed "progress N" after it copied
# and synced c$N, and removes c$((N - 2)) only after "progress $((N - 1))", so the
# directory of the last whole "progress N" line is whole, however far past T the
# guest got before the kill.  A last line cut short may be "progress $((N + 1))",
# after which c$N may be going: then c$((N + 1)) (synced before it) must be whole.
ext4_check_churn() {
	local p=$1 name=$2 copy=$3 t=$4 d=$5 n want got cut=
	local console=$out/$name.console
	[ -n "$(tail -c 1 "$console")" ] && cut=1	# no newline at the end
	n=$(tr -d '\r' <"$console" | { if [ -n "$cut" ]; then sed '$d'; else cat; fi; } |
		grep -aE '^progress [0-9]+$' | tail -n 1 | cut -d' ' -f2)
	[ -n "$n" ] || n=$t
	want=$(dir_entries "$GIMG" /usr/sbin)
	got=$(dir_entries "$copy" "/churn/c$n")
	if [ "$got" != "$want" ] && [ -n "$cut" ]; then
		n=$((n + 1))
		got=$(dir_entries "$copy" "/churn/c$n")
	fi
	if [ "$got" != "$want" ]; then
		bad "ext4 point $p: /churn/c$n, synced before 'progress $n', has $got entries after recovery, not $want"
		return
	fi
	echo "crash ext4 point $p/$points: kill $d ms after progress $t, last progress $n:" \
		"$(grep -c 'recovering journal' "$out/$name.replay" || true) journal recovery," \
		"then e2fsck -fn clean; /churn/c$n (synced) has all $got entries"
}

ext4_point() {	# ext4_point P: the same image from point to point
	local p=$1 t=$((1 + RANDOM % 3)) d=$((RANDOM % 1000)) name=ext4-$p rc=0
	local disk=$out/ext4.img copy=$out/ext4-copy.img
	start_vm "$name" "$disk,writeback" "wl=ext4-stress"
	wait_line "$name" "^progress $t\$" 300 || rc=$?
	kill_vm "$d"
	if [ $rc -ne 0 ]; then
		not_seen "$name" "progress $t" $rc
		return
	fi
	cp --sparse=always "$disk" "$copy"
	e2fsck -E journal_only -y "$copy" >"$out/$name.replay" 2>&1
	rc=$?
	if [ $rc -gt 1 ]; then
		cat "$out/$name.replay"
		bad "ext4 point $p: journal recovery failed (e2fsck -E journal_only: status $rc)"
	elif ! e2fsck -fn "$copy" >"$out/$name.fsck" 2>&1; then
		head -n 20 "$out/$name.fsck"
		bad "ext4 point $p: damage beyond what the journal repairs (e2fsck -fn after recovery)"
	else
		ext4_check_churn "$p" "$name" "$copy" "$t" "$d"
	fi
	rm -f "$copy"
}

[ "$mode" = check ] || echo "kill-loop: mode $mode, $points points, seed $seed"
case $mode in
check)	# kill-loop.sh check NAME SEED OUTDIR DISK: the host's side of cut-*
	mode=$2 out=$4
	check_records "$2" "$3" "$5" && echo "crash $2: $CHECKED"
	exit $failures ;;
cut-dsync|cut-fsync|cut-xq) cut_point ;;
dsync|fsync) for ((p = 1; p <= points; p++)); do records_point $p; done ;;
ext4)	"$(dirname "$0")/../../images/make-ext4-image.sh" "$out/ext4.img" 64 >/dev/null ||
		{ echo "FAIL: cannot make the ext4 image"; exit 1; }
	for ((p = 1; p <= points; p++)); do ext4_point $p; done ;;
*)	echo "kill-loop: unknown mode '$mode'"; exit 2 ;;
esac
echo "kill-loop: $mode: $failures of $points points failed"
[ $failures -eq 0 ]
