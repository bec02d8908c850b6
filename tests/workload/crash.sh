#!/usr/bin/env bash
# Crash consistency: tinyvmm killed with SIGKILL at random points while a Linux guest
# writes (tests/workload/kill-loop.sh, on the runner's KVM). Numbered records written
# with O_DIRECT|O_DSYNC to a writethru disk and with write + fsync to a writeback
# disk: every record the guest saw acknowledged must be whole in the image. An ext4
# file system under a write-heavy guest: after journal recovery, e2fsck -fn is clean.
# TINYVMM_CRASH_SEED repeats a run (the seed is printed); TINYVMM_CRASH_POINTS sets
# the kill points per records mode (default 10), TINYVMM_CRASH_EXT4_POINTS the ext4
# ones (default 3).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"

seed=${TINYVMM_CRASH_SEED:-$(( $(date +%s) % 100000000 ))}
points=${TINYVMM_CRASH_POINTS:-10}
ext4_points=${TINYVMM_CRASH_EXT4_POINTS:-3}
echo "crash: seed $seed (TINYVMM_CRASH_SEED=$seed repeats this run)"
loop=$top_srcdir/tests/workload/kill-loop.sh
status=0
# env: the nested runner passes only TINYVMM_* and a few more variables through.
RUN_TIMEOUT=1500 run_on_kvm env TINYVMM="$TINYVMM" KERNEL="$KDIR/vmlinux" GIMG="$GIMG" \
	GUEST_SH="$GUEST_SH" bash -c '"$0" dsync "$1" "$3" "$4"; a=$?; "$0" fsync "$1" "$3" "$4"; b=$?;
		"$0" ext4 "$2" "$3" "$4"; c=$?; exit $((a | b | c))' \
	"$loop" "$points" "$ext4_points" "$seed" "$WORK" >"$WORK/loop.out" 2>&1 || status=$?
cat "$WORK/loop.out"
[ "$status" -ne 125 ] || { fail "the nested-KVM harness failed"; finish; }
[ "$status" -eq 0 ] || fail "kill-loop reported failures (status $status)"
for m in dsync fsync; do
	n=$(grep -c "^crash $m point .* intact" "$WORK/loop.out")
	[ "$n" -eq "$points" ] || fail "$m: $n of $points kill points checked out"
done
n=$(grep -c "^crash ext4 point .* clean" "$WORK/loop.out")
[ "$n" -eq "$ext4_points" ] || fail "ext4: $n of $ext4_points kill points checked out"
finish
