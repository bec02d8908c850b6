#!/usr/bin/env bash
# A 64 MiB ext4 root on /dev/vda: the kernel finds it, mounts it
# read-write, and its superblock write reaches the image file.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/boot/disk-common.sh"

mkimage "$WORK/root.img" 64
before=$(mount_count "$WORK/root.img")
boot "root=/dev/vda rw rootfstype=ext4" -s 9,virtio-blk,"$WORK/root.img"
after=$(mount_count "$WORK/root.img")

assert_contains "$WORK/console" 'virtio_blk virtio0: \[vda\] 131072 512-byte logical blocks' \
	"vda size"
assert_contains "$WORK/console" 'EXT4-fs \(vda\): mounted filesystem' "ext4 mounted"
assert_contains "$WORK/console" 'VFS: Mounted root \(ext4 filesystem\) on device 254:0' \
	"mounted read-write as root"
if [ "$after" -ne $((before + 1)) ]; then
	fail "mount count went from $before to $after; expected $((before + 1))"
else
	echo "ok: mount count $before -> $after"
fi
assert_no_kick_exits 9
finish
