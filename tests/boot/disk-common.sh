# shellcheck shell=bash
# Helpers for the virtio-blk boot tests (sourced after tests/lib.sh).

need_kernel vmlinux
need_kvm
command -v dumpe2fs >/dev/null || skip "dumpe2fs (e2fsprogs) is not installed"

# mkimage FILE MIB: a small ext4 image from the project's recipe.
mkimage() {
	"$top_srcdir/images/make-ext4-image.sh" "$1" "$2" >/dev/null ||
		{ fail "cannot make ext4 image $1"; finish; }
}

mount_count() {
	dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Mount count/ { gsub(/ /, "", $2); print $2 }'
}

# boot CMDLINE TINYVMM-ARGS...: boot vmlinux, console in $WORK/console,
# tinyvmm's stderr in $WORK/stderr, exit status in $BOOT_STATUS.
boot() {
	local cmdline=$1
	shift
	BOOT_STATUS=0
	run_tinyvmm --stats -m 256M --cmdline "console=ttyS0 panic=-1 loglevel=7 $cmdline" \
		"$@" "$KDIR/vmlinux" >"$WORK/console" 2>"$WORK/stderr" || BOOT_STATUS=$?
	echo "--- console (virtio/vda/EXT4/VFS/panic lines) ---"
	grep -E 'virtio|vd[a-z]|EXT4|VFS|Kernel panic|Linux version' "$WORK/console" | head -40
	echo "--- tinyvmm stderr ---"
	cat "$WORK/stderr"
	if [ "$BOOT_STATUS" -eq 125 ]; then
		fail "the nested-KVM harness failed (see above)"
		finish
	fi
	[ "$BOOT_STATUS" -eq 0 ] || fail "tinyvmm exit status $BOOT_STATUS, expected 0 (reset after panic)"
	assert_contains "$WORK/stderr" 'VM stopped: guest reset' "tinyvmm ended on the guest's reset"
}

# No queue kick may have reached user space once the driver was up.
assert_no_kick_exits() {
	assert_contains "$WORK/stderr" \
		"stats: virtio-blk slot $1: requests=[1-9][0-9]* .*notify-exits-after-driver-ok=0 " \
		"slot $1 served requests with no kick exits after DRIVER_OK"
}
