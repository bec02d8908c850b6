#!/usr/bin/env bash
# DISCARD and WRITE_ZEROES from a Linux guest (tests/workload/guest.sh
# wl=discard): blkdiscard and blkdiscard -z on vdb, fstrim of a deleted file on
# an ext4 vdc; on vdd, a range= window: blkdiscard -z of its first 8 MiB, an
# ext4 in it with a deleted file trimmed, then blkdiscard of the whole window.
# The guest checks that the ranges read back as zeros; the host, that the image
# files gave their blocks back (st_blocks), that the data around the ranges is
# untouched, and that nothing outside the window changed.  The images live in a
# directory that punches holes (tests/workload/discard-run.sh; 9p in the nested
# runner does not).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"

MiB=1048576
rand_file "$WORK/vdb.img" 64
truncate -s 64M "$WORK/vdc.img"
rand_file "$WORK/vdd.img" 48		# window: 8 MiB .. 40 MiB
WIN_LBA=16384 WIN_SECTORS=65536
cp "$WORK/vdb.img" "$WORK/vdb.orig"
cp "$WORK/vdd.img" "$WORK/vdd.orig"

RUN_TIMEOUT=${RUN_TIMEOUT:-300} run_on_kvm bash "$top_srcdir/tests/workload/discard-run.sh" \
	"$TINYVMM" "$KDIR/vmlinux" "$GIMG" "$WORK" "$(wl_cmdline wl=discard)" "$WIN_LBA/$WIN_SECTORS"
rc=$?
echo "--- discard: guest lines ---"
grep -E '^(discard|guest)|I/O error|EXT4-fs error|Kernel panic' "$WORK/discard.console"
echo "--- discard: tinyvmm stderr ---"
cat "$WORK/discard.stderr"
echo "--- discard: image blocks (512-byte units) before / after ---"
cat "$WORK/blocks"
[ "$rc" -ne 125 ] || { fail "the nested-KVM harness failed"; finish; }
[ "$rc" -eq 0 ] || fail "tinyvmm exit status $rc (the guest's checks: 0 expected)"
assert_contains "$WORK/discard.console" '^discard: PASS' "the guest's zero checks passed"
assert_contains "$WORK/discard.console" '^discard: /dev/vdb max_discard=[1-9]' "vdb offers discard"
assert_contains "$WORK/discard.console" '^discard: fstrim vdc: /mnt: [0-9.]+ MiB' "fstrim of vdc trimmed"
assert_contains "$WORK/discard.console" '^discard: fstrim vdd: /mnt: [0-9.]+ MiB' "fstrim in vdd's window trimmed"

# blocks NAME WHEN: st_blocks recorded by discard-run.sh
blocks() { awk -v n="$1" -v w="$2" '$1 == n && $2 == w { print $3 }' "$WORK/blocks"; }
shrank() {	# shrank NAME MIB: the image gave back at least MIB
	local b a
	b=$(blocks "$1" before) a=$(blocks "$1" after)
	if [ -z "$b" ] || [ -z "$a" ] || [ $((b - a)) -lt $(($2 * 2048)) ]; then
		fail "$1: expected at least $2 MiB given back, blocks before ${b:-?} after ${a:-?}"
	else
		echo "host: $1 gave back $(((b - a) / 2048)) MiB"
	fi
}
shrank vdb 24		# 16 MiB discarded + 8 MiB zeroed (may_unmap)
shrank vdd 32		# the whole window
# vdc started sparse; the guest synced a 32 MiB file into it, deleted it and ran
# fstrim: what stays allocated is the file system's metadata, far less than the file.
a=$(blocks vdc after)
if [ -z "$a" ] || [ "$a" -ge $((16 * 2048)) ]; then
	fail "vdc: after fstrim the image still holds ${a:-?} blocks (the deleted 32 MiB file was not given back)"
else
	echo "host: vdc holds $((a / 2048)) MiB after the 32 MiB file was deleted and trimmed"
fi

# Contents: zeros exactly where asked, the rest as it was.
same() {	# same IMG ORIG OFF_MIB LEN_MIB
	cmp -s <(dd if="$1" bs=1M skip="$3" count="$4" status=none) \
		<(dd if="$2" bs=1M skip="$3" count="$4" status=none)
}
zeros() {	# zeros IMG OFF_MIB LEN_MIB
	cmp -s <(dd if="$1" bs=1M skip="$2" count="$3" status=none) <(head -c $(($3 * MiB)) /dev/zero)
}
same "$WORK/vdb.img" "$WORK/vdb.orig" 0 8 || fail "vdb: the 8 MiB before the discard changed"
zeros "$WORK/vdb.img" 8 16 || fail "vdb: the discarded 16 MiB are not zeros in the image"
same "$WORK/vdb.img" "$WORK/vdb.orig" 24 8 || fail "vdb: the 8 MiB between the ranges changed"
zeros "$WORK/vdb.img" 32 8 || fail "vdb: the zeroed 8 MiB are not zeros in the image"
same "$WORK/vdb.img" "$WORK/vdb.orig" 40 24 || fail "vdb: the 24 MiB after the ranges changed"
same "$WORK/vdd.img" "$WORK/vdd.orig" 0 8 || fail "vdd: bytes before the range= window changed"
zeros "$WORK/vdd.img" 8 32 || fail "vdd: the discarded window is not zeros in the image"
same "$WORK/vdd.img" "$WORK/vdd.orig" 40 8 || fail "vdd: bytes after the range= window changed"
[ "$(stat -c %s "$WORK/vdd.img")" -eq $((48 * MiB)) ] || fail "vdd: the file's size changed"
finish
