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
