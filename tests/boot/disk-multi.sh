#!/usr/bin/env bash
# Several disks: slot order (not command-line order) names them, sizes
# and sector sizes are what the options say, range= shows only its window.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/boot/disk-common.sh"

truncate -s 64M "$WORK/a.img"		# slot 9  -> vda, 131072 sectors
truncate -s 32M "$WORK/b.img"		# slot 10 -> vdb, 65536 sectors
truncate -s 16M "$WORK/c.img"		# slot 11 -> vdc, 4096-byte sectors: 4096 blocks
truncate -s 64M "$WORK/d.img"		# slot 12 -> vdd, range=2048/20480 (10 MiB window)
boot "" -s 10,virtio-blk,"$WORK/b.img" -s 12,virtio-blk,"$WORK/d.img",range=2048/20480 \
	-s 9,virtio-blk,"$WORK/a.img" -s 11,virtio-blk,"$WORK/c.img",sectorsize=4096

assert_contains "$WORK/console" '\[vda\] 131072 512-byte logical blocks' "slot 9 is vda (64 MiB)"
assert_contains "$WORK/console" '\[vdb\] 65536 512-byte logical blocks' "slot 10 is vdb (32 MiB)"
assert_contains "$WORK/console" '\[vdc\] 4096 4096-byte logical blocks' \
	"slot 11 is vdc with 4096-byte sectors"
assert_contains "$WORK/console" '\[vdd\] 20480 512-byte logical blocks' \
	"slot 12 is vdd showing only the range= window"
finish
