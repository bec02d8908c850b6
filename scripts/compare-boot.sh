#!/usr/bin/env bash
# Boot the same kernel, cmdline and image under tinyvmm and under Debian's
# qemu-system-x86_64 -enable-kvm, one after the other, and print the
# seconds from each VMM's start to the kernel's milestones.
#   scripts/compare-boot.sh TINYVMM KERNEL_DIR [IMAGE]
# With IMAGE the guest mounts it as its ext4 root from /dev/vda (a copy per
# VMM, so both see the same bytes); without, it ends at the root-mount panic.
# Needs /dev/kvm; on a host without it, run it through tests/nested/run.sh.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 TINYVMM KERNEL_DIR [IMAGE]" >&2; exit 2; }
tinyvmm=$1 kdir=$2 image=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/compare-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmdline="console=ttyS0 panic=-1 loglevel=7"
[ -n "$image" ] && cmdline="$cmdline root=/dev/vda rw rootfstype=ext4"

# stamp OUT CMD...: run CMD, prefix every console line with seconds since start.
stamp() {
	local out=$1 t0
	shift
	t0=$EPOCHREALTIME
	"$@" </dev/null 2>&1 | while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done | awk -v t0="$t0" '{ t = $1; $1 = ""; printf "%.3f%s\n", t - t0, $0 }' >"$out" || true
}

first() {	# first FILE REGEX: seconds of the first matching line, or "-"
	awk -v re="$2" '$0 ~ re { print $1; found = 1; exit } END { if (!found) print "-" }' "$1"
}

report() {	# report NAME FILE
	printf '%-34s %8s %8s %8s %8s %8s\n' "$1" "$(first "$2" 'Linux version')" \
		"$(first "$2" 'Kernel panic')" "$(first "$2" '\[vda\]')" \
		"$(first "$2" 'EXT4-fs \(vda\): mounted filesystem')" "$(tail -n 1 "$2" | cut -d' ' -f1)"
}

tv_args=(-m 256M --cmdline "$cmdline")
qemu_args=(-enable-kvm -M pc -m 256M -nographic -no-reboot -append "$cmdline")
if [ -n "$image" ]; then
	cp "$image" "$work/tv.img"
	cp "$image" "$work/qemu.img"
	tv_args+=(-s 9,virtio-blk,"$work/tv.img")
	qemu_args+=(-drive file="$work/qemu.img",if=none,id=d0,format=raw
		    -device virtio-blk-pci,drive=d0,disable-modern=on)
fi

stamp "$work/tinyvmm.log" "$tinyvmm" "${tv_args[@]}" "$kdir/vmlinux"
stamp "$work/qemu.log" qemu-system-x86_64 "${qemu_args[@]}" -kernel "$kdir/vmlinux"

echo "kernel: $kdir/vmlinux"
echo "cmdline: $cmdline"
printf '%-34s %8s %8s %8s %8s %8s\n' "seconds from start" "Linux" "panic" "[vda]" "mounted" "last"
report "tinyvmm" "$work/tinyvmm.log"
report "qemu-system-x86_64 -enable-kvm" "$work/qemu.log"
grep -h 'VM stopped' "$work/tinyvmm.log" | cut -d' ' -f2- || true
