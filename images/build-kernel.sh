#!/usr/bin/env bash
# Build the tinyvmm guest kernel (vmlinux + bzImage) from Debian's linux-source-6.1:
# `make ARCH=x86_64 tinyconfig` + images/kernel.config + `make olddefconfig`.
#
# Usage: images/build-kernel.sh [--print-dir] [--no-feature-names]
#
# Result: ${TINYVMM_CACHE:-$HOME/.cache/tinyvmm}/kernel-<key>/{vmlinux,bzImage,System.map,.config,build.log,build-info}
# where <key> = first 16 hex digits of sha256(fragment + linux-source version + recipe parameters).
# Progress messages go to stderr; stdout gets exactly one line, the absolute path of that
# directory, so callers can do:  dir=$(images/build-kernel.sh | tail -1)
#
#   --print-dir          print the directory that would be used, build nothing, exit 0
#   --no-feature-names   the same kernel without CONFIG_X86_FEATURE_NAMES (and PROC_FS,
#                        which selects it; its own cache
#                        entry): tests/boot/pvm-hiding.sh boots it to show that tinyvmm's
#                        PVM feature hiding does not depend on feature names
#
# Environment:
#   TINYVMM_CACHE         cache root (default $HOME/.cache/tinyvmm)
#   TINYVMM_LINUX_TARBALL source tarball (default /usr/src/linux-source-6.1.tar.xz)
#   TINYVMM_KERNEL_CONFIG fragment to use instead of images/kernel.config (experiments)
#   TINYVMM_KEEP_BUILD=1  keep the unpacked, built source tree (kernel-<key>.build/)
set -euo pipefail

# Everything here that changes the built kernel must be in RECIPE (it is hashed into the key).
# Bump RECIPE_VERSION when changing the build steps below in a way that changes the output.
RECIPE_VERSION=1
KARCH=x86_64
RECIPE="recipe=$RECIPE_VERSION arch=$KARCH base=tinyconfig merge=merge_config.sh+olddefconfig targets=vmlinux,bzImage"

SRC_PKG=linux-source-6.1
DEFAULT_TARBALL=/usr/src/linux-source-6.1.tar.xz
TARBALL=${TINYVMM_LINUX_TARBALL:-$DEFAULT_TARBALL}
BUILD_PKGS=(build-essential flex bison bc libelf-dev libssl-dev xz-utils lz4)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENT=${TINYVMM_KERNEL_CONFIG:-$here/kernel.config}

msg() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

print_dir=0
no_names=0
for arg in "$@"; do
    case $arg in
        --print-dir) print_dir=1 ;;
        --no-feature-names) no_names=1 ;;
        -h|--help) sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument '$arg' (usage: $0 [--print-dir] [--no-feature-names])" ;;
    esac
done

[ -r "$FRAGMENT" ] || die "missing Kconfig fragment $FRAGMENT"
FRAGMENT=$(cd "$(dirname "$FRAGMENT")" && pwd -P)/$(basename "$FRAGMENT")

cache_root=${TINYVMM_CACHE:-${HOME:?HOME is not set; set TINYVMM_CACHE}/.cache/tinyvmm}
mkdir -p "$cache_root" || die "cannot create cache directory $cache_root"
cache_root=$(cd "$cache_root" && pwd -P)

if [ $no_names -eq 1 ]; then
    # The fragment with feature names off; its content is hashed into the key like any other.
    derived=$cache_root/fragment-no-feature-names.config
    # PROC_FS selects X86_FEATURE_NAMES (/proc/cpuinfo prints the names), so it goes
    # too: this kernel only boots to its ext4 mount, without user space.
    { grep -v -E 'CONFIG_(X86_FEATURE_NAMES|PROC_FS)[ =]' "$FRAGMENT"
      echo '# CONFIG_X86_FEATURE_NAMES is not set'; echo '# CONFIG_PROC_FS is not set'; } \
        > "$derived.$$" && mv "$derived.$$" "$derived" || die "cannot write $derived"
    FRAGMENT=$derived
fi

# One install path for every script: scripts/deps.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/deps.sh"
pkg_installed() { deps_installed "$1"; }
ensure_pkgs() { deps_install "$@" || die "cannot install the Debian packages it needs"; }

# Identify the source for the cache key: the Debian package version, or (for a tarball
# that does not come from an installed package) the tarball's own hash.
source_version() {
    if [ "$TARBALL" = "$DEFAULT_TARBALL" ] && pkg_installed "$SRC_PKG"; then
        printf '%s %s' "$SRC_PKG" "$(dpkg-query -W -f='${Version}' "$SRC_PKG")"
    elif [ -r "$TARBALL" ]; then
        printf 'tarball-sha256 %s' "$(sha256sum < "$TARBALL" | cut -c1-64)"
    else
        # Not installed yet: the version apt would install (so --print-dir still answers).
        local cand
        cand=$(LC_ALL=C apt-cache policy "$SRC_PKG" 2>/dev/null | sed -n 's/^ *Candidate: //p')
        printf '%s %s' "$SRC_PKG" "${cand:-unknown}"
    fi
}

if [ ! -r "$TARBALL" ] && [ $print_dir -eq 0 ]; then
    [ "$TARBALL" = "$DEFAULT_TARBALL" ] || die "source tarball $TARBALL not found"
    ensure_pkgs "$SRC_PKG"
    [ -r "$TARBALL" ] || die "$SRC_PKG is installed but $TARBALL is missing"
fi

srcver=$(source_version)
key=$( { cat "$FRAGMENT"; printf '\n--\n%s\n%s\n' "$srcver" "$RECIPE"; } | sha256sum | cut -c1-16)
out=$cache_root/kernel-$key

if [ $print_dir -eq 1 ]; then
    printf '%s\n' "$out"
    exit 0
fi

cached() { [ -s "$out/vmlinux" ] && [ -s "$out/bzImage" ]; }
if cached; then
    msg "kernel cached: $out"
    printf '%s\n' "$out"
    exit 0
fi

ensure_pkgs "${BUILD_PKGS[@]}"

# One builder per key at a time; a second caller waits and then finds the cache filled.
exec 9>"$out.lock"
if ! flock -n 9; then
    msg "another build of kernel-$key is running; waiting for it ..."
    flock 9
fi
if cached; then
    msg "kernel cached: $out"
    printf '%s\n' "$out"
    exit 0
fi

avail_kb=$(df -Pk "$cache_root" | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt $((3 * 1024 * 1024)) ]; then
    msg "warning: only $((avail_kb / 1024)) MiB free under $cache_root; the build needs about 2 GiB"
fi

build=$out.build
tmp=$out.tmp
log=$out.log
cleanup() {
    rm -rf "$tmp"
    if [ "${TINYVMM_KEEP_BUILD:-0}" != 1 ]; then rm -rf "$build"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$build" "$tmp"
mkdir -p "$build/src" "$tmp"
: > "$log"

fail() {
    msg "error: $1; last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit 1
}

start=$(date +%s)
ncpu=$(nproc)
kmake() { make -C "$build/src" ARCH=$KARCH "$@" >> "$log" 2>&1; }

msg "unpacking $SRC_PKG ($srcver) into $build ..."
tar -xJf "$TARBALL" -C "$build/src" --strip-components=1 >> "$log" 2>&1 || fail "unpacking $TARBALL failed"

msg "configuring (tinyconfig + $FRAGMENT) ..."
kmake tinyconfig || fail "make tinyconfig failed"
(cd "$build/src" && scripts/kconfig/merge_config.sh -m .config "$FRAGMENT") >> "$log" 2>&1 ||
    fail "merge_config.sh failed"
kmake olddefconfig || fail "make olddefconfig failed"

# Every option the fragment sets must have survived olddefconfig (a dependency that is
# not met silently drops it otherwise).
bad=()
while IFS= read -r line; do
    case $line in
        CONFIG_*=*)
            grep -qxF -- "$line" "$build/src/.config" || {
                have=$(grep -E "^(# )?${line%%=*}[= ]" "$build/src/.config" || true)
                bad+=("$line (final .config has: ${have:-nothing})")
            } ;;
        "# CONFIG_"*" is not set")
            opt=${line#\# }; opt=${opt%% *}
            if have=$(grep -E "^$opt=" "$build/src/.config"); then
                bad+=("$line (final .config has: $have)")
            fi ;;
    esac
done < "$FRAGMENT"
if [ ${#bad[@]} -gt 0 ]; then
    msg "error: options from $FRAGMENT did not stick after olddefconfig:"
    printf 'images:   %s\n' "${bad[@]}" >&2
    exit 1
fi

msg "building (about 3-6 min on 2 cores; -j$ncpu; log: $log) ..."
kmake -j"$ncpu" vmlinux bzImage || fail "kernel build failed"

cp "$build/src/vmlinux" "$build/src/arch/x86/boot/bzImage" "$build/src/System.map" "$tmp/"
cp "$build/src/.config" "$tmp/.config"
secs=$(( $(date +%s) - start ))
{
    printf 'key=%s\nsource=%s\n%s\nfragment_sha256=%s\n' "$key" "$srcver" "$RECIPE" \
        "$(sha256sum < "$FRAGMENT" | cut -c1-64)"
    printf 'compiler=%s\nbuild_seconds=%s\njobs=%s\n' "$(gcc --version | head -n1)" "$secs" "$ncpu"
} > "$tmp/build-info"
mv "$log" "$tmp/build.log"
log=$tmp/build.log
rm -rf "$out"
mv "$tmp" "$out"
rm -f "$out.lock"
if [ "${TINYVMM_KEEP_BUILD:-0}" != 1 ]; then
    msg "removing the build tree ..."
    rm -rf "$build"
fi

msg "done in ${secs}s: $out"
printf '%s\n' "$out"
