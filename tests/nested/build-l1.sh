#!/usr/bin/env bash
# Build the L1 kit for running tinyvmm on nested KVM inside a QEMU TCG guest
# with an emulated AMD SVM CPU (for hosts without /dev/kvm; see tests/nested/run.sh).
#
# Usage: tests/nested/build-l1.sh [--print-dir]
#
# Result: ${TINYVMM_CACHE:-$HOME/.cache/tinyvmm}/l1-<key>/{vmlinuz,vmlinux,initrd.cpio.gz,build-info}
# where <key> = first 16 hex digits of sha256(this script + tests/nested/l1-init +
# the Debian linux-image package and version that linux-image-amd64's candidate
# depends on).  The initrd holds busybox-static, the kvm/kvm-amd, virtio, virtio-blk, 9p and
# overlay modules of that kernel and tests/nested/l1-init as /init.
# Progress lines ("nested: ...") go to stdout; on success the last stdout line is
# the kit directory (the only line when the kit is already cached):
#   kit=$(tests/nested/build-l1.sh | tail -n 1)
#
#   --print-dir   print the directory that would be used, build nothing, exit 0
#
# Environment:
#   TINYVMM_CACHE   cache root (default $HOME/.cache/tinyvmm)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$here/$(basename "${BASH_SOURCE[0]}")
INIT=$here/l1-init
PKGS=(qemu-system-x86 busybox-static cpio xz-utils)
# Load order matters (busybox insmod does not resolve dependencies).
MODULES=(
	virt/lib/irqbypass
	drivers/crypto/ccp/ccp
	arch/x86/kvm/kvm
	arch/x86/kvm/kvm-amd
	drivers/virtio/virtio_ring
	drivers/virtio/virtio
	drivers/virtio/virtio_pci_legacy_dev
	drivers/virtio/virtio_pci_modern_dev
	drivers/virtio/virtio_pci
	drivers/block/virtio_blk
	net/9p/9pnet
	net/9p/9pnet_virtio
	fs/netfs/netfs
	fs/fscache/fscache
	fs/9p/9p
	fs/overlayfs/overlay
)

msg() { printf 'nested: %s\n' "$*"; }
die() { printf 'nested: error: %s\n' "$*" >&2; exit 1; }

print_dir=0
for arg in "$@"; do
	case $arg in
	--print-dir) print_dir=1 ;;
	-h|--help) sed -n '2,19s/^# \{0,1\}//p' "$SELF"; exit 0 ;;
	*) die "unknown argument '$arg' (usage: $0 [--print-dir])" ;;
	esac
done

[ -r "$INIT" ] || die "missing $INIT"

# One install path for every script: scripts/deps.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/deps.sh"
pkg_installed() { deps_installed "$1"; }
ensure_pkgs() { deps_install "$@" || die "cannot install the Debian packages it needs"; }

# The versioned kernel package behind linux-image-amd64's candidate, as
# "NAME VERSION" (e.g. "linux-image-6.1.0-56-amd64 6.1.192-2"); local apt data only.
kernel_pkg() {
	local dep
	dep=$(LC_ALL=C apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n 1)
	[ -n "$dep" ] || return 1
	printf '%s\n' "$dep"
}

if ! kpkg=$(kernel_pkg); then
	[ $print_dir -eq 1 ] && die "apt knows no candidate for linux-image-amd64 (run: apt-get update)"
	[ "$(id -u)" -eq 0 ] || die "apt knows no candidate for linux-image-amd64; run: sudo apt-get update"
	msg "apt knows no linux-image-amd64 candidate; running apt-get update ..."
	apt-get update -q >&2 || true
	kpkg=$(kernel_pkg) || die "no candidate for linux-image-amd64 even after apt-get update"
fi
kname=${kpkg% *}
kver=${kpkg#* }
krel=${kname#linux-image-}

key=$( { cat "$SELF"; printf '\n--\n'; cat "$INIT"; printf '\n--\n%s\n' "$kpkg"; } |
	sha256sum | cut -c1-16)
cache_root=${TINYVMM_CACHE:-${HOME:?HOME is not set; set TINYVMM_CACHE}/.cache/tinyvmm}
out=$cache_root/l1-$key

if [ $print_dir -eq 1 ]; then
	printf '%s\n' "$out"
	exit 0
fi

cached() { [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.cpio.gz" ]; }
if cached; then	# one line: the kit directory
	printf '%s\n' "$out"
	exit 0
fi

ensure_pkgs "${PKGS[@]}"
mkdir -p "$cache_root" || die "cannot create $cache_root"

# One builder per key; a second caller waits and then finds the cache filled.
exec 9>"$out.lock"
if ! flock -n 9; then
	msg "another build of l1-$key is running; waiting for it ..."
	flock 9
fi
if cached; then
	msg "L1 kit cached: $out"
	printf '%s\n' "$out"
	exit 0
fi

tmp=$out.tmp
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/dl" "$tmp/deb" "$tmp/root"
start=$(date +%s)

msg "downloading $kname $kver ..."
if ! (cd "$tmp/dl" && apt-get download -q -o APT::Sandbox::User=root "$kname=$kver" >&2); then
	msg "apt-get download failed; running apt-get update and retrying ..."
	[ "$(id -u)" -eq 0 ] && { apt-get update -q >&2 || true; }
	(cd "$tmp/dl" && apt-get download -q -o APT::Sandbox::User=root "$kname=$kver" >&2) ||
		die "apt-get download $kname=$kver failed"
fi
deb=$(ls "$tmp"/dl/*.deb)
msg "extracting $(basename "$deb") ..."
dpkg -x "$deb" "$tmp/deb"

kmods=$tmp/deb/lib/modules/$krel/kernel
[ -s "$tmp/deb/boot/vmlinuz-$krel" ] || die "no boot/vmlinuz-$krel in $deb"
r=$tmp/root
mkdir -p "$r/bin" "$r/mods" "$r/proc" "$r/sys" "$r/dev" "$r/host" "$r/ovl"
cp /bin/busybox "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do
	[ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
done
for m in "${MODULES[@]}"; do
	b=$(basename "$m")
	if [ -f "$kmods/$m.ko" ]; then
		cp "$kmods/$m.ko" "$r/mods/$b.ko"
	elif [ -f "$kmods/$m.ko.xz" ]; then
		xz -dc "$kmods/$m.ko.xz" >"$r/mods/$b.ko"
	elif [ -f "$kmods/$m.ko.zst" ]; then
		zstd -qdc "$kmods/$m.ko.zst" >"$r/mods/$b.ko"
	else
		die "module $m not found in $kname"
	fi
done
cp "$INIT" "$r/init"
chmod 755 "$r/init"
msg "packing initrd ..."
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -6 >"$tmp/initrd.cpio.gz"
cp "$tmp/deb/boot/vmlinuz-$krel" "$tmp/vmlinuz"
# The uncompressed ELF kernel boots through its PVH note, which skips the
# decompressor: that takes about 4 of the 7 s an L1 boot needs under TCG.
# run.sh uses it when present (Debian's kernels are XZ-compressed, CONFIG_PVH=y).
off=$(LC_ALL=C grep -abo -m 1 $'\xfd7zXZ\x00' "$tmp/vmlinuz" | head -n 1 | cut -d: -f1 || true)
if [ -n "$off" ]; then
	tail -c +$((off + 1)) "$tmp/vmlinuz" | xz -dcq >"$tmp/vmlinux" 2>/dev/null || true
	if [ "$(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ')" != '177ELF' ]; then
		msg "warning: cannot extract vmlinux from vmlinuz; L1 boots will be slower"
		rm -f "$tmp/vmlinux"
	fi
fi
{
	printf 'key=%s\nkernel_package=%s\nkernel_version=%s\n' "$key" "$kname" "$kver"
	printf 'busybox=%s\nmodules=%s\n' "$(dpkg-query -W -f='${Version}' busybox-static)" "${MODULES[*]}"
} >"$tmp/build-info"
rm -rf "$tmp/dl" "$tmp/deb" "$tmp/root"
rm -rf "$out"
mv "$tmp" "$out"
rm -f "$out.lock"
msg "L1 kit built in $(( $(date +%s) - start ))s: $out"
printf '%s\n' "$out"
