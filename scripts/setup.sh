#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a booted demo guest:
# installs missing Debian packages, builds tinyvmm in build/, builds the
# guest kernel and the workload tests' guest image (busybox, fio, e2fsprogs)
# into the cache (images/build-kernel.sh, images/make-guest-image.sh) and a
# demo ext4 root image, then boots it with the image as /dev/vda.
#   scripts/setup.sh             everything, ending with the demo boot
#   scripts/setup.sh --no-demo   everything but the boot
#   scripts/setup.sh --bench     also what make bench, make bench-guest and
#                                make fuzz need (fio, QEMU, clang with
#                                libFuzzer); combines
#                                with --no-demo
# It builds the nested-KVM kit (tests/nested/build-l1.sh) on every host: the
# power-cut test cuts its machine. Where Linux guests cannot run directly --
# no usable /dev/kvm, or a PVM host (KVM without VT-x/AMD-V: guests run in
# KVM's instruction emulator, without user space) -- all boot tests and the
# demo run there, and it says why.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

demo=1
bench=0
for arg in "$@"; do
	case $arg in
	--no-demo) demo=0 ;;
	--bench) bench=1 ;;
	-h|--help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "setup: unknown argument '$arg' (usage: scripts/setup.sh [--no-demo] [--bench])" >&2
	   exit 2 ;;
	esac
done

deps=($TINYVMM_BUILD_DEPS $TINYVMM_TEST_DEPS)
[ "$bench" -eq 0 ] || deps+=($TINYVMM_BENCH_DEPS)
deps_install "${deps[@]}"

echo "setup: building tinyvmm in build/"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null
fi
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -s -j"$(nproc)")

kdir=$(images/build-kernel.sh | tail -n 1)
echo "setup: guest kernel in $kdir"
gimg=$(images/make-guest-image.sh --run tests/workload/guest.sh --cache 192 | tail -n 1)
echo "setup: guest image with fio and e2fsprogs (the workload tests' and make bench-guest's) in $gimg"

nested=0
case $(build/tinyvmm --print-host-kind) in
none)	nested=1
	why="this host has no usable /dev/kvm" ;;
pvm)	nested=1
	why="this is a PVM host (KVM without VT-x/AMD-V): a Linux guest would run in KVM's instruction emulator, minutes per boot and without user space" ;;
esac
if [ "$nested" -eq 1 ]; then
	echo "setup: $why; building the nested-KVM kit (KVM inside QEMU TCG with an emulated AMD SVM CPU), which the boot tests and the demo use here"
else
	echo "setup: building the nested-KVM kit (KVM inside QEMU TCG): tests/workload/powercut.sh cuts the power of its L1 machine"
fi
tests/nested/build-l1.sh >/dev/null

[ "$demo" -eq 1 ] || exit 0

mkdir -p build/demo
img=$PWD/build/demo/root.img
[ -f "$img" ] || images/make-ext4-image.sh "$img" 64 >/dev/null
args=(-s 9,virtio-blk,"$img" --cmdline "console=ttyS0 root=/dev/vda rw panic=-1" "$kdir/vmlinux")
echo "setup: booting the demo guest: tinyvmm ${args[*]}"
echo "setup: it mounts build/demo/root.img as its root; its /sbin/init says hello and reboots (Ctrl-A x quits)"
if [ "$nested" -eq 0 ]; then
	exec build/tinyvmm "${args[@]}"
fi
echo "setup: running the demo on nested KVM: $why (nested, every guest instruction is emulated by QEMU, about 10 s to boot)"
exec tests/nested/run.sh "$PWD/build/demo" -- "$PWD/build/tinyvmm" "${args[@]}"
