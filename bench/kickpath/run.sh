#!/bin/sh
# SPDX-License-Identifier: MIT
#
# make kick-path: which source files one request passes through on the
# queue thread, and how often a call crosses from one file into another.
# Builds bench/blkbench from SRC (and from BASE, an older source tree,
# when given) with -finstrument-functions in a temporary directory, runs
# randread 4 KiB QD1 and randwrite 4 KiB QD32 writeback on aio=io_uring,
# and prints bench/kickpath/report.py's table for each.
#
#   bench/kickpath/run.sh SRC [BASE]     (make kick-path KICKPATH_BASE=...)
#
# KICKPATH_OPTS: more virtio-blk options for SRC's runs only (an older
# BASE may not take them), e.g. ",msix=off" to compare with a base that
# had INTx only.
#
# A tree configured in place cannot be built out of tree: give a clean
# checkout (git worktree add /tmp/base COMMIT; autoreconf -fi there).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "kick-path: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: run.sh SRC [BASE]"
command -v python3 >/dev/null || die "python3 not found"
command -v addr2line >/dev/null || die "addr2line not found (Debian package binutils)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-kickpath.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
${CC:-gcc} -O2 -c "$here/hook.c" -o "$WORK/hook.o"
FILE=$WORK/disk.img
dd if=/dev/urandom of="$FILE" bs=1M count=256 status=none
cat "$FILE" >/dev/null

# -fno-inline: every call in the source is a call in the binary, so its
# call site names its caller's file.
CFLAGS_KP="-O1 -fno-inline -g -finstrument-functions"
CFLAGS_KP="$CFLAGS_KP -finstrument-functions-exclude-file-list=bench/blkbench,tests/driver/,/usr/include"

n=0
opts=${KICKPATH_OPTS:-}
for src in "$@"; do
	src=$(cd "$src" && pwd)
	[ -x "$src/configure" ] || die "$src: no configure script (autoreconf -fi there)"
	[ ! -f "$src/config.status" ] ||
		die "$src is configured in place, so it cannot be built out of tree: use a build directory (mkdir build && cd build && ../configure) or a clean checkout"
	rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "?")
	[ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev+changes"
	n=$((n + 1))
	b=$WORK/build-$n
	mkdir -p "$b"
	echo "kick-path: building $src ($rev) instrumented"
	(cd "$b" && "$src/configure" -q CFLAGS="$CFLAGS_KP" LDFLAGS="-no-pie $WORK/hook.o" >build.log 2>&1 &&
		make -j"$(nproc)" bench/blkbench >>build.log 2>&1) ||
		{ tail -n 20 "$b/build.log" >&2; die "build of $src failed"; }
	for w in "randread-4k-qd1 randread 1" "randwrite-4k-qd32-writeback randwrite 32 ,writeback"; do
		set -- $w
		KICKPATH_OUT=$WORK/events "$b/bench/blkbench" --rw="$2" --bs=4096 --qd="$3" --runtime=1 \
			--disk "$FILE,qsize=256,aio=io_uring${4:-}$opts" >"$WORK/bb.out" 2>&1 ||
			{ cat "$WORK/bb.out" >&2; die "blkbench failed"; }
		grep '^kick-path:' "$WORK/bb.out" >&2 || true
		python3 "$here/report.py" "$b/bench/blkbench" "$WORK/events" "$rev:$1$opts" "$src" "$b"
	done
	opts=
done
