#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a booted demo guest:
# installs missing Debian packages, builds tinyvmm in build/, builds the
# guest kernel into the cache (images/build-kernel.sh) and a demo ext4
# root image, then boots it with the image as /dev/vda.
#   scripts/setup.sh             everything, ending with the demo boot
#   scripts/setup.sh --no-demo   everything but the boot
# On a host without /dev/kvm it also builds the nested-KVM kit
# (tests/nested/build-l1.sh) and boots the demo there, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

deps_install $TINYVMM_BUILD_DEPS $TINYVMM_TEST_DEPS

echo "setup: building tinyvmm in build/"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null
fi
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -s -j"$(nproc)")

kdir=$(images/build-kernel.sh | tail -n 1)
echo "setup: guest kernel in $kdir"

nested=0
if [ ! -w /dev/kvm ]; then
	nested=1
	echo "setup: /dev/kvm is missing here: building the nested-KVM kit (KVM inside QEMU TCG with an emulated AMD SVM CPU), which the boot tests use on this host"
	tests/nested/build-l1.sh >/dev/null
fi

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
echo "setup: no /dev/kvm: running the demo on nested KVM (slow: every guest instruction is emulated by QEMU)"
exec tests/nested/run.sh "$PWD/build/demo" -- "$PWD/build/tinyvmm" "${args[@]}"
