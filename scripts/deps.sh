# shellcheck shell=bash
# Debian packages tinyvmm needs to build and test (sourced).

TINYVMM_BUILD_DEPS="gcc make autoconf automake pkg-config linux-libc-dev libelf-dev libcmocka-dev"
TINYVMM_TEST_DEPS="e2fsprogs util-linux coreutils"
# Only where /dev/kvm is missing: tests/nested/build-l1.sh installs its own
# (qemu-system-x86, busybox-static, cpio).

# deps_install PKG...: install what dpkg does not know as installed.
deps_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "setup: installing Debian packages: ${missing[*]}"
	local sudo=
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null; then
			sudo=sudo
		else
			echo "setup: error: missing packages; run as root: apt-get install -y ${missing[*]}" >&2
			return 1
		fi
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
	{ $sudo apt-get update -q >/dev/null &&
	  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } ||
	{ echo "setup: error: apt-get install ${missing[*]} failed" >&2; return 1; }
}
