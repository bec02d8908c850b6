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

need_kvm() {
	local dev=${TINYVMM_KVM_DEVICE:-/dev/kvm}
	[ -z "${TINYVMM_SKIP_BOOT:-}" ] || skip "boot tests turned off for this run (TINYVMM_SKIP_BOOT)"
	[ -e "$dev" ] || skip "$dev is missing on this host (no KVM), so no guest can boot here"
	[ -r "$dev" ] && [ -w "$dev" ] || skip "$dev is not accessible to $(id -un)"
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
