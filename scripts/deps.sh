# shellcheck shell=bash
# Debian packages tinyvmm needs, and the one way its scripts install them
# (sourced by scripts/setup.sh, images/build-kernel.sh, tests/nested/build-l1.sh).

TINYVMM_BUILD_DEPS="gcc make autoconf automake pkg-config linux-libc-dev libelf-dev libcmocka-dev liburing-dev libseccomp-dev libnbd-dev"
# fio and binutils: the workload tests' host-side checks and images/make-guest-image.sh;
# nbdkit: the NBD server the NBD engine's unit tests talk to; qemu-utils:
# qemu-img and qemu-nbd, a qcow2 root disk served over NBD (tests/workload/nbd.sh).
TINYVMM_TEST_DEPS="e2fsprogs util-linux coreutils fio binutils nbdkit qemu-utils"
# make bench (fio is the peer it measures against), make bench-guest (QEMU is the
# peer there) and make fuzz (libFuzzer).
TINYVMM_BENCH_DEPS="fio qemu-system-x86 clang libclang-rt-dev"
# images/build-kernel.sh and tests/nested/build-l1.sh name their own.

deps_installed() {	# deps_installed PKG: dpkg says "install ok installed"
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# deps_install PKG...: install the ones that are missing, as root or through
# non-interactive sudo; otherwise print the exact command and fail.
deps_install() {
	local missing=() p sudo=()
	for p in "$@"; do
		deps_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo=(sudo -n)
		else
			echo "error: missing Debian packages: ${missing[*]}; install them with:" >&2
			echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
			return 1
		fi
	fi
	echo "installing Debian packages: ${missing[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 && return 0
	# A stale package index is the usual reason: refresh it once.
	"${sudo[@]}" apt-get update -q >&2 || true
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
		{ echo "error: apt-get install ${missing[*]} failed" >&2; return 1; }
}
