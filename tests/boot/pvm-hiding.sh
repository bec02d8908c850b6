#!/usr/bin/env bash
# The PVM feature hiding reaches a kernel built without feature names, checked on
# any host: tinyvmm --host-kind pvm forces the PVM cmdline (here usually on the
# nested AMD-V runner, where the guest's CPU has XSAVE).  The kernel comes from
# images/build-kernel.sh --no-feature-names, which ignores every name in
# clearcpuid= and takes only numbers.  A boot without the hiding is the control:
# the same kernel then uses XSAVE, so the assertions below can fail.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

KDIR=${TINYVMM_KERNEL_NONAMES_DIR:-$("$top_srcdir/images/build-kernel.sh" --print-dir --no-feature-names)}
[ -s "$KDIR/vmlinux" ] ||
	skip "no kernel without feature names in $KDIR (build it with images/build-kernel.sh --no-feature-names)"
need_kvm
if ! grep -qx '# CONFIG_X86_FEATURE_NAMES is not set' "$KDIR/.config"; then
	fail "$KDIR/.config has feature names on: the test would prove nothing"
	finish
fi

# hiding_boot NAME TINYVMM-ARGS...: no root device, panic=-1: ends at the root-mount panic.
hiding_boot() {
	local name=$1 st=0
	shift
	RUN_TIMEOUT=${TINYVMM_BOOT_TIMEOUT:-300} run_tinyvmm -m 256M "$@" \
		--cmdline "console=ttyS0 panic=-1 loglevel=7" "$KDIR/vmlinux" \
		>"$WORK/$name.console" 2>"$WORK/$name.stderr" || st=$?
	echo "--- $name: exit status $st ---"
	grep -E 'Command line|Clearing CPUID|x86/fpu|XSAVE|Kernel panic' "$WORK/$name.console" | head -12
	cat "$WORK/$name.stderr"
	if [ "$st" -eq 125 ]; then
		fail "$name: the nested-KVM harness failed, so tinyvmm's result is unknown"
	elif [ "$st" -ne 0 ]; then
		fail "$name: tinyvmm exit status $st, expected 0 (guest reset after the panic)"
	fi
	assert_contains "$WORK/$name.console" 'Kernel panic - not syncing: VFS: Unable to mount root fs' \
		"$name: booted to the root-mount panic"
}

# The kernel sets up XSAVE state: it says so, or (QEMU TCG's SVM under the
# nested runner) warns about the sizes it finds.
XSAVE_USED='x86/fpu: Supporting XSAVE feature|x86/fpu: Enabled xstate|XSAVE consistency problem'

hiding_boot control --no-host-quirks
assert_contains "$WORK/control.console" "$XSAVE_USED" \
	"control: without the hiding this guest uses XSAVE (else the check below proves nothing)"

hiding_boot hidden --host-kind pvm
assert_contains "$WORK/hidden.stderr" \
	'PVM \(no VT-x/AMD-V\) host: added to the guest cmdline: nosmap nosmep nopku clearcpuid=154,151,' \
	"the PVM cmdline was added"
# Without names Linux prints word:bit; xsave is 4:26, popcnt 4:23, avx 4:28.
assert_contains "$WORK/hidden.console" 'Clearing CPUID bits: 4:26 4:23 4:28 9:5 ' \
	"clearcpuid= numbers taken by a kernel without feature names"
assert_contains "$WORK/hidden.console" 'x86/fpu: x87 FPU will use FXSAVE' "XSAVE off"
if grep -Eq "$XSAVE_USED" "$WORK/hidden.console"; then
	fail "the guest still uses XSAVE: $(grep -Em1 "$XSAVE_USED" "$WORK/hidden.console")"
fi
finish
