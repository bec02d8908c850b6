#!/usr/bin/env bash
# Make a guest image with real user space: an ext4 root file system holding busybox
# (shell and core tools), fio, e2fsprogs, util-linux and GNU dd from Debian's packages, and an
# init that runs a script and ends tinyvmm with the script's exit status.
#
# Usage: images/make-guest-image.sh [--run SCRIPT] OUT SIZE_MB
#        images/make-guest-image.sh [--run SCRIPT] --cache SIZE_MB
#
#   OUT          image file to write (replaced if it exists)
#   SIZE_MB      image size in MiB (128 or more: the libraries fio links take ~90 MiB)
#   --run SCRIPT copied into the image as /run.sh; init runs it with /bin/sh, its output
#                on the console, then writes its exit status to the debug-exit port,
#                so tinyvmm exits with that status (0 stays 0). Without --run, init
#                starts a shell on the console; leaving it ends tinyvmm with status 0.
#   --cache      build the image once into the cache (keyed by this script, SCRIPT,
#                SIZE_MB and the Debian package versions) and print its path; a later
#                call with the same inputs only prints the path. Used by the tests.
#   --print-path with --cache: print the path that would be used, build nothing
#
# Boot it read-only (tinyvmm never changes it; init puts a tmpfs on /tmp):
#   tinyvmm -m 512M -s 2,virtio-blk,IMG,ro -s 3,virtio-blk,data.img \
#           --cmdline "console=ttyS0 root=/dev/vda ro panic=-1" KERNEL_DIR/vmlinux
# Words of the kernel command line that the kernel does not know (KEY=VALUE without a
# dot) reach init, and so /run.sh, as environment variables.
# The kernel must be images/build-kernel.sh's (it needs /dev/port, SysV IPC, io_uring).
#
# Progress lines ("guest-image: ...") go to stderr; stdout gets the image path.
# Environment: TINYVMM_CACHE (cache root, default $HOME/.cache/tinyvmm; the .deb files
# are kept in its debs/ folder).
set -euo pipefail

# Bump when the steps below change the image in a way the inputs do not show.
RECIPE_VERSION=1
# What the image is made of. Their run-time libraries come with them (the ELF closure
# of the programs below, taken from the same packages' dependencies).
PKGS=(busybox-static fio e2fsprogs util-linux coreutils libc6)
# Programs installed besides busybox (by file name, from the packages above); GNU dd
# for oflag=dsync, which busybox's dd lacks.
PROGS=(dd fio mke2fs e2fsck debugfs tune2fs dumpe2fs blkid blkdiscard lsblk fstrim
	fallocate findmnt wipefs)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$here/$(basename "${BASH_SOURCE[0]}")
prog=${0##*/}
msg() { printf 'guest-image: %s\n' "$*" >&2; }
die() { printf 'guest-image: error: %s\n' "$*" >&2; exit 1; }
usage() {
	printf 'usage: %s [--run SCRIPT] {OUT SIZE_MB | --cache [--print-path] SIZE_MB} (see --help)\n' \
		"$prog" >&2
	exit 2
}

run_script= cache=0 print_path=0 args=()
while [ $# -gt 0 ]; do
	case $1 in
	--run) [ $# -ge 2 ] || usage; run_script=$2; shift 2 ;;
	--run=*) run_script=${1#--run=}; shift ;;
	--cache) cache=1; shift ;;
	--print-path) print_path=1; shift ;;
	-h|--help) sed -n '2,29s/^# \{0,1\}//p' "$SELF"; exit 0 ;;
	--) shift; args+=("$@"); break ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) args+=("$1"); shift ;;
	esac
done
if [ $cache -eq 1 ]; then
	[ ${#args[@]} -eq 1 ] || usage
	out= size=${args[0]}
else
	[ $print_path -eq 0 ] || die "--print-path goes with --cache"
	[ ${#args[@]} -eq 2 ] || usage
	out=${args[0]} size=${args[1]}
	[ -n "$out" ] && [ ! -d "$out" ] || die "OUT '$out' is empty or a directory"
	[ -d "$(dirname -- "$out")" ] || die "directory '$(dirname -- "$out")' (for OUT) does not exist"
fi
case $size in ''|*[!0-9]*) die "SIZE_MB '$size' is not a whole number of MiB" ;; esac
size=$((10#$size))
[ "$size" -ge 128 ] || die "SIZE_MB must be at least 128 (got $size)"
if [ -n "$run_script" ]; then
	[ -f "$run_script" ] && [ -r "$run_script" ] || die "--run script '$run_script' is not a readable file"
fi

# One install path for every script: scripts/deps.sh.
. "$here/../scripts/deps.sh"
for t in apt-cache apt-get dpkg-deb readelf; do
	command -v "$t" >/dev/null || die "$t not found (this needs a Debian system with binutils)"
done

# The packages and their library dependencies, as NAME=VERSION (local apt data only).
pkg_list() {
	local names
	names=$(LC_ALL=C apt-cache depends --recurse --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances "${PKGS[@]}" 2>/dev/null |
		grep -E '^[a-z0-9]' | grep -E '^(lib|zlib1g$)' || true)
	# shellcheck disable=SC2086  # one name per word
	LC_ALL=C apt-cache show --no-all-versions "${PKGS[@]}" $names 2>/dev/null |
		awk '/^Package:/ { p = $2 } /^Version:/ { print p "=" $2 }' | sort -u
}
list=$(pkg_list)
for p in "${PKGS[@]}"; do
	grep -q "^$p=" <<<"$list" || die "apt knows no candidate for '$p' (run: apt-get update)"
done

cache_root=${TINYVMM_CACHE:-${HOME:?HOME is not set; set TINYVMM_CACHE}/.cache/tinyvmm}
key=$( {
	printf 'recipe=%s size=%s\n' "$RECIPE_VERSION" "$size"
	cat "$SELF" "$here/guest-init"
	printf '\n--run--\n'
	[ -z "$run_script" ] || cat "$run_script"
	printf '\n--pkgs--\n%s\n' "$list"
} | sha256sum | cut -c1-16)
if [ $cache -eq 1 ]; then
	out=$cache_root/guest-$key/guest.img
	if [ $print_path -eq 1 ] || [ -s "$out" ]; then
		printf '%s\n' "$out"
		exit 0
	fi
fi

mkdir -p "$cache_root/debs" || die "cannot create $cache_root/debs"
work=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-guest-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the .deb files: downloaded once into the cache, by name and version ------------
fetch_debs() {
	local want=() pv name ver f
	while IFS= read -r pv; do
		name=${pv%%=*} ver=${pv#*=}
		f=$(ls "$cache_root/debs/${name}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
		[ -n "$f" ] || want+=("$pv")
	done <<<"$list"
	[ ${#want[@]} -gt 0 ] || return 0
	msg "downloading ${#want[@]} Debian packages into $cache_root/debs ..."
	(cd "$cache_root/debs" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "${want[@]}" >&2) ||
		die "apt-get download failed (network? stale index: run apt-get update)"
}
fetch_debs

stage=$work/stage
root=$work/root
mkdir -p "$stage"
msg "unpacking $(wc -l <<<"$list") packages ..."
while IFS= read -r pv; do
	name=${pv%%=*} ver=${pv#*=}
	f=$(ls "$cache_root/debs/${name}_${ver//:/%3a}_"*.deb | head -n 1)
	dpkg-deb -x "$f" "$stage" || die "cannot unpack $f"
done <<<"$list"

# --- the root tree: merged /usr, busybox applets, the programs, their libraries -----
(
	umask 022
	mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} \
		"$root"/{dev,proc,sys,tmp,etc,root,mnt,run}
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
)
install -m 0755 "$stage/bin/busybox" "$root/usr/bin/busybox"
# Applets as symlinks, under the merged /usr (bin/sh -> usr/bin/sh).
"$stage/bin/busybox" --list-full | while IFS= read -r a; do
	a=${a#usr/}
	[ "$a" != bin/busybox ] && [ ! -e "$root/usr/$a" ] && ln -s /usr/bin/busybox "$root/usr/$a"
done

find_prog() {	# the file NAME in a bin or sbin folder of the stage
	local d
	for d in sbin usr/sbin bin usr/bin; do
		[ -f "$stage/$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}
for p in "${PROGS[@]}"; do
	rel=$(find_prog "$p") || die "no program '$p' in the packages ${PKGS[*]}"
	case $rel in *sbin/*) dest=usr/sbin/$p ;; *) dest=usr/bin/$p ;; esac
	rm -f "$root/$dest"	# a busybox applet of the same name gives way
	install -m 0755 "$stage/$rel" "$root/$dest"
done
ln -sf mke2fs "$root/usr/sbin/mkfs.ext4"
ln -sf e2fsck "$root/usr/sbin/fsck.ext4"
cp "$stage/etc/mke2fs.conf" "$root/etc/"

# Shared libraries: the NEEDED closure of every ELF in usr/, resolved in the stage.
declare -A libpath=()
while IFS= read -r f; do
	b=${f##*/}
	[ -n "${libpath[$b]:-}" ] || libpath[$b]=$f
done < <(find "$stage/lib/x86_64-linux-gnu" "$stage/usr/lib/x86_64-linux-gnu" \
	"$stage/usr/lib/x86_64-linux-gnu"/*/ -maxdepth 1 -name '*.so*' 2>/dev/null)
needed() { LC_ALL=C readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
queue=()
while IFS= read -r f; do queue+=("$f"); done < <(find "$root/usr" -type f)
while [ ${#queue[@]} -gt 0 ]; do
	f=${queue[0]}
	queue=("${queue[@]:1}")
	for so in $(needed "$f"); do
		dest=$root/usr/lib/x86_64-linux-gnu/$so
		[ -e "$dest" ] && continue
		[ -n "${libpath[$so]:-}" ] || die "library $so (needed by ${f#"$root"}) is in none of the packages"
		cp -L "${libpath[$so]}" "$dest"
		queue+=("$dest")
	done
done
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/usr/lib64/ld-linux-x86-64.so.2"
[ -e "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || die "no dynamic loader in the image"
ldconfig -r "$root" 2>/dev/null || PATH=$PATH:/sbin:/usr/sbin ldconfig -r "$root" ||
	die "ldconfig -r failed"

# /etc, init and the script.
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
echo tinyvmm-guest > "$root/etc/hostname"
ln -s /proc/self/mounts "$root/etc/mtab"
{
	printf 'tinyvmm guest image (images/make-guest-image.sh), key %s\n' "$key"
	printf '%s\n' "$list"
} > "$root/etc/tinyvmm-image"
# Debian's busybox-static runs its own applet for a command of the same name before
# looking at PATH (standalone shell), so "dd" would be busybox's dd whatever PATH
# says. Shell functions come first: /etc/tinyvmm-env.sh maps each such name to the
# real program, for /run.sh (init sources it first) and for the shell (ENV).
{
	echo '# written by images/make-guest-image.sh: the real programs before busybox applets'
	applets=$("$stage/bin/busybox" --list)
	for p in "${PROGS[@]}"; do
		grep -qx "$p" <<<"$applets" || continue
		f=/usr/bin/$p
		[ -e "$root/usr/sbin/$p" ] && f=/usr/sbin/$p
		printf '%s() { %s "$@"; }\n' "$p" "$f"
	done
} > "$root/etc/tinyvmm-env.sh"
install -m 0755 "$here/guest-init" "$root/sbin/init"
[ -z "$run_script" ] || install -m 0755 "$run_script" "$root/run.sh"

# Each program must start: run them on the host, chrooted into the tree (no root: skip).
if [ "$(id -u)" -eq 0 ]; then
	for t in "fio --version" "mke2fs -V" "e2fsck -V" "lsblk --version" "sh -c true"; do
		chroot "$root" /usr/bin/env $t >/dev/null 2>&1 ||
			die "'$t' does not run in the new tree (missing library?)"
	done
fi
find "$root" -exec touch -h -d @1700000000 {} +

if [ $cache -eq 1 ]; then
	mkdir -p "${out%/*}"
	tmp_out=${out%/*}/.guest.img.$$
else
	tmp_out=$out
fi
"$here/make-ext4-image.sh" "$tmp_out" "$size" "$root" >/dev/null ||
	die "could not make the ${size} MiB file system (too small? the tree is $(du -sm "$root" | cut -f1) MiB)"
[ "$tmp_out" = "$out" ] || mv -f "$tmp_out" "$out"
msg "$out: $size MiB, $(du -sm "$root" | cut -f1) MiB of files, $(wc -l <<<"$list") packages"
printf '%s\n' "$out"
