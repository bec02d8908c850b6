#!/usr/bin/env bash
# The same disk with ro: the kernel sees a read-only device, mounts the
# root read-only, and the image is byte for byte what it was.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/boot/disk-common.sh"

mkimage "$WORK/root.img" 64
cp "$WORK/root.img" "$WORK/root.orig"
boot "root=/dev/vda rw rootfstype=ext4" -s 9,virtio-blk,"$WORK/root.img",ro

assert_contains "$WORK/console" 'virtio_blk virtio0: \[vda\] 131072 512-byte logical blocks' \
	"vda size"
assert_contains "$WORK/console" 'VFS: Mounted root \(ext4 filesystem\) readonly on device 254:0' \
	"mounted read-only"
if cmp -s "$WORK/root.img" "$WORK/root.orig"; then
	echo "ok: image unchanged"
else
	fail "the ro image changed: $(cmp "$WORK/root.img" "$WORK/root.orig" | head -1)"
fi
finish
