# shellcheck shell=bash
# Boot the project's guest kernel with no root device and panic=-1, and
# assert on the kernel's own console lines and on how tinyvmm ended.
# Sourced by boot-vmlinux.sh and boot-bzimage.sh with IMAGE set.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

need_kernel "$IMAGE"
need_kvm

CMDLINE="console=ttyS0 panic=-1 loglevel=7 tinyvmm.test=$TEST_NAME"
start=$(date +%s.%N)
st=0
RUN_TIMEOUT=${TINYVMM_BOOT_TIMEOUT:-900} \
	run_tinyvmm --stats -m 256M --cmdline "$CMDLINE" "$KDIR/$IMAGE" \
	>"$WORK/console" 2>"$WORK/stderr" || st=$?
end=$(date +%s.%N)

echo "--- console (last 30 lines) ---"
tail -n 30 "$WORK/console"
echo "--- tinyvmm stderr ---"
cat "$WORK/stderr"
echo "--- $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s wall clock"

if [ "$st" -eq 125 ] && [ "$RUNNER" = nested ]; then
	fail "the nested KVM harness failed (L1 hung or crashed; see the nested: lines above), so tinyvmm's result is unknown"
elif [ "$st" -eq 124 ] || [ "$st" -eq 137 ]; then
	fail "tinyvmm did not end by itself within the timeout"
elif [ "$st" -ne 0 ]; then
	fail "tinyvmm exit status $st, expected 0 (guest reset after panic)"
fi
assert_contains "$WORK/console" 'Linux version 6\.1\.' "kernel banner"
assert_contains "$WORK/console" "Command line: .*tinyvmm\.test=$TEST_NAME" "cmdline echoed"
assert_contains "$WORK/console" 'Kernel panic - not syncing: VFS: Unable to mount root fs' \
	"root-mount panic"
assert_contains "$WORK/stderr" 'VM stopped: guest reset' "tinyvmm ended on the guest's reset"
assert_contains "$WORK/stderr" 'stats: exits to user space:.* IO=' "--stats exit counts"
finish
