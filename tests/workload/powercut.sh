#!/usr/bin/env bash
# Power cuts: the machine under tinyvmm loses power while a Linux guest writes numbered
# records (tests/workload/kill-loop.sh cut-fsync / cut-dsync). The machine is the
# nested runner's L1 on every host kind -- the only machine a test can cut -- and
# tinyvmm's data disk is L1's own virtio disk, so what tinyvmm did not flush out of
# L1's page cache is lost, as on real hardware. Every record the guest saw
# acknowledged must then be whole in the file behind that disk: write + fsync on a
# writeback disk (a FLUSH that does nothing fails here), O_DIRECT|O_DSYNC on writethru,
# and (once) O_DIRECT on vCPU 0's queue then fsync on vCPU 1's (a FLUSH that covers
# only its own queue's writes fails there).
# TINYVMM_CRASH_SEED repeats a run (the seed is printed); TINYVMM_POWERCUT_POINTS
# sets the cuts per mode (default 2).
. "$(dirname "$0")/../lib.sh"
# The machine to cut is L1, wherever the other tests run guests.
if [ "${TINYVMM_RUNNER:-}" = direct ]; then
	skip "TINYVMM_RUNNER=direct, and a power cut needs the nested runner's L1"
fi
TINYVMM_RUNNER=nested
if ! command -v qemu-system-x86_64 >/dev/null ||
	! kit=${TINYVMM_L1_KIT:-$("$top_srcdir/tests/nested/build-l1.sh" --print-dir 2>/dev/null)} ||
	[ ! -s "$kit/vmlinuz" ]; then
	skip "no nested runner here (QEMU and tests/nested/build-l1.sh's kit): no machine to cut power to"
fi
. "$(dirname "$0")/common.sh"

seed=${TINYVMM_CRASH_SEED:-$(( $(date +%s) % 100000000 ))}
echo "powercut: seed $seed (TINYVMM_CRASH_SEED=$seed repeats this run)"
loop=$top_srcdir/tests/workload/kill-loop.sh
points=${TINYVMM_POWERCUT_POINTS:-2}
cuts=0
# cut-xq once: a record written on one queue, flushed on another (mq).
for ((p = 1; p <= points; p++)); do
	modes="cut-fsync cut-dsync"
	[ "$p" -gt 1 ] || modes="$modes cut-xq"
	for m in $modes; do
		disk=$WORK/$m.disk
		rm -f "$disk"
		truncate -s 16M "$disk"
		st=0
		NESTED_DISK=$disk RUN_TIMEOUT=400 run_on_kvm env TINYVMM="$TINYVMM" \
			KERNEL="$KDIR/vmlinux" GIMG="$GIMG" GUEST_SH="$GUEST_SH" CUT_DISK=/dev/vda \
			CUT_MARK="$WORK/.nested/powercut" bash "$loop" "$m" 1 $((seed + p)) "$WORK" \
			>"$WORK/$m.out" 2>&1 || st=$?
		cat "$WORK/$m.out"
		if [ "$st" -ne 0 ]; then
			fail "$m cut $p: the run before the cut failed (status $st)"
			continue
		fi
		grep -q "^crash $m: seed .* power cut" "$WORK/$m.out" ||
			{ fail "$m cut $p: no power cut happened"; continue; }
		s=$(sed -n "s/^crash $m: seed \([0-9]*\),.*/\1/p" "$WORK/$m.out")
		if GUEST_SH=$GUEST_SH bash "$loop" check "$m" "$s" "$WORK" "$disk"; then
			cuts=$((cuts + 1))
		else
			fail "$m cut $p: acknowledged records were lost in the power cut"
		fi
	done
done
[ "$cuts" -eq $((2 * points + 1)) ] || fail "$cuts of $((2 * points + 1)) power cuts checked out"
finish
