#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a booted demo guest:
# installs missing Debian packages, builds tinyvmm in build/, builds the
# guest kernel into the cache (images/build-kernel.sh), then boots it.
#   scripts/setup.sh             everything, ending with the demo boot
#   scripts/setup.sh --no-demo   everything but the boot
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

deps_install $TINYVMM_BUILD_DEPS $TINYVMM_TEST_DEPS

echo "setup: building tinyvmm in build/"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
	autoreconf -fi >/dev/null
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -s -j"$(nproc)")

kdir=$(images/build-kernel.sh | tail -n 1)
echo "setup: guest kernel in $kdir"

[ "$demo" -eq 1 ] || exit 0
if [ ! -w /dev/kvm ]; then
	echo "setup: built everything, but cannot boot the demo guest: /dev/kvm is missing or not writable on this host" >&2
	exit 1
fi
echo "setup: booting the demo guest (no root disk: it ends at the root-mount panic and reboots; Ctrl-A x quits)"
exec build/tinyvmm --cmdline "console=ttyS0 panic=-1" "$kdir/vmlinux"
