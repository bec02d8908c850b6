#!/usr/bin/env bash
# Make a raw ext4 disk image for a tinyvmm guest (no partition table: the guest mounts
# the whole disk, e.g. root=/dev/vda).
#
# Usage: images/make-ext4-image.sh OUT SIZE_MB [DIR]
#
#   OUT      image file to write (replaced if it exists)
#   SIZE_MB  image size in MiB (whole number, 4 or more)
#   DIR      directory tree to copy into the file system (mkfs.ext4 -d). Default: a tiny
#            generated tree: /sbin/init (a 222-byte static x86-64 program that writes
#            "tinyvmm-init: /sbin/init is running; rebooting" to its console, calls sync()
#            and reboot(RESTART)), /etc/hostname, and empty /dev /proc /sys /tmp /root.
#
# The file system gets a fixed UUID and hash seed, root owned by 0:0, a fixed creation
# time, and fully initialised inode tables and journal (so the guest kernel does not start
# ext4lazyinit and write to the disk behind the test's back).
# Environment: TINYVMM_IMAGE_UUID (default below), TINYVMM_IMAGE_LABEL (default tinyvmm-root).
set -euo pipefail

UUID=${TINYVMM_IMAGE_UUID:-5d8e1f2a-7c4b-4e6d-9a31-74696e79766d}
LABEL=${TINYVMM_IMAGE_LABEL:-tinyvmm-root}
EPOCH=1700000000   # fixed time stamp for the file system and the generated files

prog=${0##*/}
usage() { printf 'usage: %s OUT SIZE_MB [DIR]\n' "$prog" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

case ${1:-} in -h|--help) sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;; esac
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; exit 2; fi
out=$1 size=$2 dir=${3:-}

[ -n "$out" ] || die "OUT is empty"
[ ! -d "$out" ] || die "OUT '$out' is a directory"
outdir=$(dirname -- "$out")
[ -d "$outdir" ] || die "directory '$outdir' (for OUT) does not exist"
[ -w "$outdir" ] || die "directory '$outdir' (for OUT) is not writable"
case $size in
    ''|*[!0-9]*) die "SIZE_MB '$size' is not a whole number of MiB" ;;
esac
size=$((10#$size))
[ "$size" -ge 4 ] || die "SIZE_MB must be at least 4 (got $size)"
[ "$size" -le 1048576 ] || die "SIZE_MB $size is larger than 1 TiB; is that a typo?"
if [ -n "$dir" ]; then
    [ -d "$dir" ] || die "DIR '$dir' is not a directory"
    if [ ! -r "$dir" ] || [ ! -x "$dir" ]; then die "DIR '$dir' is not readable"; fi
fi

mkfs=$(PATH=$PATH:/sbin:/usr/sbin command -v mkfs.ext4 || true)
[ -n "$mkfs" ] || die "mkfs.ext4 not found; install it with: apt-get install -y e2fsprogs"

tmpdir=
img_tmp=
img_cmds=
cleanup() {
    [ -z "$tmpdir" ] || rm -rf "$tmpdir"
    [ -z "$img_tmp" ] || rm -f "$img_tmp"
    [ -z "$img_cmds" ] || rm -f "$img_cmds"
}
trap cleanup EXIT

# The default tree. /sbin/init is hand-assembled (no compiler needed):
#   mov eax,1; mov edi,1; lea rsi,[rip+msg]; mov edx,47; syscall      write(1, msg, 47)
#   mov eax,162; syscall                                              sync()
#   mov eax,169; mov edi,0xfee1dead; mov esi,0x28121969;
#   mov edx,0x01234567; syscall                                       reboot(RESTART)
#   jmp .
# loaded at 0x400000 by a single PT_LOAD (R+X) header; entry 0x400078.
write_init() {
    local hdr code
    # ELF64 header: class 64, little endian, ET_EXEC, EM_X86_64, entry 0x400078, phoff 64,
    # ehsize 64, phentsize 56, phnum 1.
    hdr='\177ELF\002\001\001\000\000\000\000\000\000\000\000\000'
    hdr+='\002\000\076\000\001\000\000\000\170\000\100\000\000\000\000\000'
    hdr+='\100\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
    hdr+='\000\000\000\000\100\000\070\000\001\000\000\000\000\000\000\000'
    # Program header: PT_LOAD, flags R+X, offset 0, vaddr = paddr = 0x400000,
    # filesz = memsz = 222, align 0x1000.
    hdr+='\001\000\000\000\005\000\000\000\000\000\000\000\000\000\000\000'
    hdr+='\000\000\100\000\000\000\000\000\000\000\100\000\000\000\000\000'
    hdr+='\336\000\000\000\000\000\000\000\336\000\000\000\000\000\000\000'
    hdr+='\000\020\000\000\000\000\000\000'
    code='\270\001\000\000\000\277\001\000\000\000\110\215\065\046\000\000\000'
    code+='\272\057\000\000\000\017\005\270\242\000\000\000\017\005'
    code+='\270\251\000\000\000\277\255\336\341\376\276\151\031\022\050'
    code+='\272\147\105\043\001\017\005\353\376'
    # shellcheck disable=SC2059  # the format strings are the octal escapes above
    { printf "$hdr"; printf "$code"; printf 'tinyvmm-init: /sbin/init is running; rebooting\n'; } > "$1"
    [ "$(wc -c < "$1")" -eq 222 ] || die "internal error: generated /sbin/init has the wrong size"
}

if [ -z "$dir" ]; then
    tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-rootfs.XXXXXX")
    dir=$tmpdir/root
    (
        umask 022
        mkdir -p "$dir"/{sbin,etc,dev,proc,sys,tmp,root}
        chmod 1777 "$dir/tmp"
        chmod 0700 "$dir/root"
        write_init "$dir/sbin/init"
        chmod 0755 "$dir/sbin/init"
        echo tinyvmm-guest > "$dir/etc/hostname"
        printf 'tinyvmm default test image (images/make-ext4-image.sh)\n' > "$dir/etc/tinyvmm-image"
        find "$dir" -exec touch -h -d "@$EPOCH" {} +
    )
fi

# Build next to OUT and rename at the end, so OUT is never a half-written image.
img_tmp=$(mktemp "$outdir/.${out##*/}.XXXXXX")
truncate -s "${size}M" "$img_tmp"
if ! E2FSPROGS_FAKE_TIME=$EPOCH "$mkfs" -q -F -t ext4 -L "$LABEL" -U "$UUID" \
        -E "root_owner=0:0,hash_seed=$UUID,lazy_itable_init=0,lazy_journal_init=0" \
        -d "$dir" "$img_tmp" >&2; then
    die "mkfs.ext4 failed for a ${size} MiB image from '$dir' (too small for its contents?)"
fi

# mkfs -d copies each file's ctime, which nobody can set; overwrite it with EPOCH in every
# inode that mkfs allocated past lost+found (the used ones: complement of dumpe2fs's
# "Free inodes" ranges), so the same tree always gives the same bytes.
dumpe2fs=$(PATH=$PATH:/sbin:/usr/sbin command -v dumpe2fs || true)
debugfs=$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs || true)
if [ -n "$dumpe2fs" ] && [ -n "$debugfs" ]; then
    img_cmds=$(mktemp "$outdir/.${out##*/}.debugfs.XXXXXX")
    cmds=$img_cmds
    "$dumpe2fs" "$img_tmp" 2>/dev/null | awk -v epoch="$EPOCH" '
        function emit(a, b,   i) { for (i = a; i <= b; i++) if (i >= 12) printf "sif <%d> ctime @%d\n", i, epoch }
        /^Inodes per group:/ { ipg = $4 }
        /^Group [0-9]+:/     { g = substr($2, 1, length($2) - 1) + 0 }
        /^  Free inodes:/ {
            first = g * ipg + 1; last = (g + 1) * ipg; cur = first
            sub(/^  Free inodes: */, "")
            n = split($0, r, /, */)
            for (k = 1; k <= n; k++) {
                if (r[k] == "") continue
                if (split(r[k], ab, "-") == 1) ab[2] = ab[1]
                emit(cur, ab[1] - 1); cur = ab[2] + 1
            }
            emit(cur, last)
        }' > "$cmds"
    if [ -s "$cmds" ]; then
        E2FSPROGS_FAKE_TIME=$EPOCH "$debugfs" -w -f "$cmds" "$img_tmp" > /dev/null 2>&1 ||
            die "debugfs could not set inode times in the new image"
    fi
    rm -f "$cmds"
fi
chmod 0644 "$img_tmp"
mv -f "$img_tmp" "$out"
img_tmp=
printf '%s\n' "$out"
