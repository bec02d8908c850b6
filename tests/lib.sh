# shellcheck shell=bash
# Shared helpers for tinyvmm's script tests (sourced).
# Automake's test driver reads exit status: 0 pass, 77 skip, else fail.

set -u
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${TINYVMM:=$top_builddir/tinyvmm}"
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-$TEST_NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=0

fail() {
	echo "FAIL $TEST_NAME: $*"
	FAILED=1
}

# A skipped test is not a passed one: say so loudly, in the log and on
# stderr, and report it to automake as SKIP.
skip() {
	local msg="SKIP $TEST_NAME: $* -- this test did NOT run and is NOT counted as passed"
	echo "$msg"
	echo "$msg" >&2
	exit 77
}

finish() {
	if [ "$FAILED" -ne 0 ]; then
		exit 1
	fi
	echo "PASS $TEST_NAME"
	exit 0
}

# The guest kernel built by images/build-kernel.sh (cached outside the tree).
kernel_dir() {
	if [ -n "${TINYVMM_KERNEL_DIR:-}" ]; then
		echo "$TINYVMM_KERNEL_DIR"
	else
		"$top_srcdir/images/build-kernel.sh" --print-dir
	fi
}

# How run_tinyvmm runs tinyvmm (set by pick_runner): "direct" on this host's KVM
# device, or "nested" through tests/nested/run.sh, on nested KVM in a QEMU TCG guest
# with an emulated AMD SVM CPU (the L1 kit comes from tests/nested/build-l1.sh).
# By host kind (tinyvmm --print-host-kind): direct on VT-x/AMD-V hosts; nested where
# there is no usable /dev/kvm, and on PVM hosts, whose KVM runs an ordinary guest in
# its instruction emulator (minutes per Linux boot, no guest user space) -- except
# for a test that sets RUNNER_PVM_OK=1 before its first run: its guests need
# neither (freestanding test guests, the PVM boot test).
# TINYVMM_RUNNER=direct|nested forces one.
RUNNER=
RUNNER_WHY=
RUNNER_NOTE=
L1_KIT=
: "${RUNNER_PVM_OK:=0}"
# The test's own log, for run_tinyvmm's "runner:" line while stdout is redirected.
exec {LOG_FD}>&1

# host_kind: vmx, svm, pvm, unknown or none, as tinyvmm detects it (asked once).
HOST_KIND=
host_kind() {
	[ -n "$HOST_KIND" ] || HOST_KIND=$("$TINYVMM" --print-host-kind 2>/dev/null || echo unknown)
	echo "$HOST_KIND"
}

# Why the direct runner cannot or should not be used here, or nothing.
direct_unfit() {
	local dev=${TINYVMM_KVM_DEVICE:-/dev/kvm}

	if [ ! -e "$dev" ]; then
		echo "$dev is missing on this host (no KVM)"
	elif [ ! -r "$dev" ] || [ ! -w "$dev" ]; then
		echo "$dev is not accessible to $(id -un)"
	elif [ "$RUNNER_PVM_OK" != 1 ] && [ "$(host_kind)" = pvm ]; then
		echo "this is a PVM host ($dev without VT-x/AMD-V: a Linux guest runs in KVM's instruction emulator, without user space)"
	fi
}

# pick_runner: set RUNNER (and L1_KIT), or return 1 with the reason in RUNNER_WHY.
pick_runner() {
	local direct_why nested_why='' kit
	[ -z "$RUNNER" ] || return 0
	host_kind >/dev/null	# asked here, not in the subshell, so that it is kept
	direct_why=$(direct_unfit)
	if ! command -v qemu-system-x86_64 >/dev/null; then
		nested_why="qemu-system-x86_64 is not installed"
	elif ! kit=${TINYVMM_L1_KIT:-$("$top_srcdir/tests/nested/build-l1.sh" --print-dir 2>&1)}; then
		nested_why="cannot locate the L1 kit: $kit"
	elif [ ! -s "$kit/vmlinuz" ]; then
		nested_why="no L1 kit in $kit (build it with tests/nested/build-l1.sh)"
	fi
	case ${TINYVMM_RUNNER:-} in
	"")	if [ -z "$direct_why" ]; then
			RUNNER=direct
		elif [ -z "$nested_why" ]; then
			RUNNER=nested
			RUNNER_NOTE=" (not direct: $direct_why)"
		else
			RUNNER_WHY="$direct_why, and nested KVM is not available: $nested_why; so no guest can boot here"
			return 1
		fi ;;
	direct)	RUNNER=direct
		RUNNER_NOTE=" (TINYVMM_RUNNER=direct)" ;;
	nested)	if [ -n "$nested_why" ]; then
			echo "ERROR $TEST_NAME: TINYVMM_RUNNER=nested, but $nested_why"
			exit 99
		fi
		RUNNER=nested
		RUNNER_NOTE=" (TINYVMM_RUNNER=nested)" ;;
	*)	echo "ERROR $TEST_NAME: TINYVMM_RUNNER must be direct or nested, not '$TINYVMM_RUNNER'"
		exit 99 ;;
	esac
	[ "$RUNNER" = direct ] || L1_KIT=$kit
}

need_kvm() {
	[ -z "${TINYVMM_SKIP_BOOT:-}" ] || skip "boot tests turned off for this run (TINYVMM_SKIP_BOOT)"
	pick_runner || skip "$RUNNER_WHY"
}

# run_on_kvm CMD ARGS...: run CMD ARGS with stdin from /dev/null where KVM is, as
# RUNNER says, and return its exit status.  RUN_TIMEOUT=SECS (optional) limits
# the command's own run: status 124 when it hits.  Nested, the paths in ARGS must
# exist on the host and the command may write only under $WORK; status 125 means
# the harness failed (L1 hung or crashed twice), so the command's result is unknown.
# NESTED_DISK=FILE (nested only): FILE is L1's /dev/vda (tests/nested/run.sh --disk).
run_on_kvm() {
	local t=()
	pick_runner || skip "$RUNNER_WHY"
	if [ "$RUNNER" = direct ]; then
		echo "runner: direct ${TINYVMM_KVM_DEVICE:-/dev/kvm}, $(host_kind) host$RUNNER_NOTE" >&"$LOG_FD"
		[ -z "${RUN_TIMEOUT:-}" ] || t=(timeout --foreground -k 10 "$RUN_TIMEOUT")
		"${t[@]}" "$@" </dev/null {LOG_FD}>&-
	else
		echo "runner: nested KVM in QEMU TCG (AMD SVM), L1 kit $L1_KIT$RUNNER_NOTE" >&"$LOG_FD"
		[ -z "${RUN_TIMEOUT:-}" ] || t=(timeout -k 10 "$RUN_TIMEOUT")
		TINYVMM_L1_KIT=$L1_KIT "$top_srcdir/tests/nested/run.sh" \
			--timeout $((${RUN_TIMEOUT:-540} + 60)) \
			${NESTED_DISK:+--disk "$NESTED_DISK"} "$WORK" -- \
			"${t[@]}" "$@" </dev/null {LOG_FD}>&-
	fi
}

# run_tinyvmm ARGS...: run_on_kvm "$TINYVMM" ARGS.
run_tinyvmm() {
	run_on_kvm "$TINYVMM" "$@"
}

need_kernel() {
	KDIR=$(kernel_dir)
	[ -f "$KDIR/$1" ] || skip "guest kernel $KDIR/$1 is not built (run images/build-kernel.sh)"
}

# assert_contains FILE PATTERN DESCRIPTION (grep -E)
assert_contains() {
	if ! grep -Eq -- "$2" "$1"; then
		fail "$3: no line matching /$2/ in $(basename "$1")"
		return 1
	fi
}

# Make a minimal file that passes tinyvmm's bzImage checks, so that a test
# reaches the steps after kernel loading without a real kernel.
make_fake_bzimage() {
	local f=$1
	head -c 8192 /dev/zero >"$f"
	put() { printf "$2" | dd of="$f" bs=1 seek=$(($1)) conv=notrunc status=none; }
	put 0x1f1 '\x01'			# setup_sects
	put 0x1fe '\x55\xaa'			# boot_flag
	put 0x200 '\xeb\x6a'			# jump: the header ends at 0x202 + 0x6a
	put 0x202 'HdrS'
	put 0x206 '\x0f\x02'			# protocol 2.15
	put 0x211 '\x01'			# loadflags LOADED_HIGH
	put 0x22c '\xff\xff\xff\x7f'		# initrd_addr_max
	put 0x230 '\x00\x00\x20\x00'		# kernel_alignment 2M
	put 0x234 '\x01'			# relocatable
	put 0x236 '\x01\x00'			# xloadflags XLF_KERNEL_64
	put 0x238 '\x00\x08\x00\x00'		# cmdline_size 2048
	put 0x260 '\x00\x00\x10\x00'		# init_size 1M
}
