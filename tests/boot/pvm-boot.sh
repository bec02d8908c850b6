#!/usr/bin/env bash
# On a PVM host (KVM without VT-x/AMD-V) only: boot the guest kernel directly, as
# a user there would, vmlinux and then bzImage, with an ext4 root on /dev/vda.
# The PVM workarounds must get Linux through FPU init, the int3 self-test and the
# mount; guest user space cannot run there, so init dies, the kernel panics and
# reboots (panic=-1) and tinyvmm exits 0 by itself.  Every other host kind boots
# the same kernel in the other boot tests (with working user space).
RUNNER_PVM_OK=1
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/boot/disk-common.sh"
need_kernel bzImage

kind=$(host_kind)
[ "$kind" = pvm ] || skip "not a PVM host (tinyvmm --print-host-kind says $kind): nothing PVM-specific to boot here"
[ "$RUNNER" = direct ] || skip "runner $RUNNER$RUNNER_NOTE: this test boots on the PVM host itself"

# pvm_boot IMAGE: one boot, bounded; asserts on the console, stderr and the image.
pvm_boot() {
	local image=$1 img=$WORK/$1.img before after start st=0

	mkimage "$img" 64
	before=$(mount_count "$img")
	start=$(date +%s.%N)
	RUN_TIMEOUT=${TINYVMM_PVM_BOOT_TIMEOUT:-400} run_tinyvmm --stats -m 256M \
		--cmdline "console=ttyS0 root=/dev/vda rw panic=-1" -s 9,virtio-blk,"$img" \
		"$KDIR/$image" >"$WORK/$image.console" 2>"$WORK/$image.stderr" || st=$?
	after=$(mount_count "$img")
	echo "--- $image: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s wall clock, exit status $st; console (selected lines) ---"
	grep -E 'Clearing CPUID|x86/fpu|\[vda\]|EXT4|VFS|Run /sbin/init|Kernel panic' \
		"$WORK/$image.console" | head -20
	echo "--- $image: tinyvmm stderr ---"
	cat "$WORK/$image.stderr"

	if [ "$st" -eq 124 ] || [ "$st" -eq 137 ]; then
		fail "$image: tinyvmm did not end by itself within the timeout"
	elif [ "$st" -ne 0 ]; then
		fail "$image: tinyvmm exit status $st, expected 0 (the guest's reboot after the panic)"
	fi
	assert_contains "$WORK/$image.stderr" 'PVM \(no VT-x/AMD-V\) host: added to the guest cmdline: nosmap nosmep nopku clearcpuid=154,' \
		"$image: PVM workarounds on the cmdline"
	assert_contains "$WORK/$image.console" 'x86/fpu: x87 FPU will use FXSAVE' "$image: XSAVE hidden"
	assert_contains "$WORK/$image.console" 'virtio_blk virtio0: \[vda\] 131072 512-byte logical blocks' \
		"$image: vda found"
	assert_contains "$WORK/$image.console" 'EXT4-fs \(vda\): mounted filesystem' "$image: ext4 mounted"
	assert_contains "$WORK/$image.stderr" 'VM stopped: guest reset' "$image: ended on the guest's reboot"
	if grep -q 'could not emulate' "$WORK/$image.stderr"; then
		fail "$image: an instruction the emulator cannot run stopped the guest"
	fi
	if [ "$after" -ne $((before + 1)) ]; then
		fail "$image: mount count went from $before to $after; expected $((before + 1)) (the superblock write)"
	else
		echo "ok: $image: mount count $before -> $after"
	fi
}

pvm_boot vmlinux
pvm_boot bzImage
finish
