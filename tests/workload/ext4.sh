#!/usr/bin/env bash
# mkfs.ext4 inside a Linux guest on /dev/vdb, a tree copied in (programs, /etc, random
# files, a symlink), its checksums recorded, sync, umount, reboot (the VM ends). The
# host then runs e2fsck -fn on the image file and checks every file it reads out of
# it (debugfs rdump) against the checksums the guest printed; a second boot mounts the
# file system read-only and checks the checksums again inside the guest.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"

truncate -s 64M "$WORK/vdb.img"
wl_boot ext4-write "wl=ext4-write" -s 3,virtio-blk,"$WORK/vdb.img"
[ "$WL_STATUS" -eq 0 ] || fail "ext4-write: tinyvmm exit status $WL_STATUS (0 expected)"
assert_contains "$WORK/ext4-write.console" '^ext4-write: done' "the guest wrote the tree"

wl_check_tree "$WORK/ext4-write.console" "$WORK/vdb.img" "the image"
[ "$(readlink "$WORK/out/tree/link-to-small-1")" = small-1 ] || fail "the symlink did not survive"

wl_boot ext4-check "wl=ext4-check" -s 3,virtio-blk,"$WORK/vdb.img"
[ "$WL_STATUS" -eq 0 ] || fail "ext4-check: tinyvmm exit status $WL_STATUS (0 expected)"
assert_contains "$WORK/ext4-check.console" "^ext4-check: $nsums files match" \
	"after the reboot the guest reads back every file"
finish
