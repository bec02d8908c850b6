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

# The checksums the guest printed, as sha256sum -c input.
sed -n 's/^ext4-sum: //p' "$WORK/ext4-write.console" | tr -d '\r' >"$WORK/sums"
nsums=$(wc -l <"$WORK/sums")
[ "$nsums" -ge 210 ] || fail "the guest printed $nsums checksums, expected the whole tree (210 or more)"

if e2fsck -fn "$WORK/vdb.img" >"$WORK/e2fsck.out" 2>&1; then
	echo "host: e2fsck -fn: clean ($(tail -n 1 "$WORK/e2fsck.out"))"
else
	cat "$WORK/e2fsck.out"
	fail "host e2fsck -fn found problems in the guest's file system"
fi

mkdir -p "$WORK/out"
debugfs -R "rdump /tree $WORK/out" "$WORK/vdb.img" >"$WORK/debugfs.out" 2>&1 ||
	fail "debugfs rdump /tree failed: $(tail -n 2 "$WORK/debugfs.out")"
if (cd "$WORK/out" && sha256sum -c --quiet "$WORK/sums") >"$WORK/sumcheck.out" 2>&1; then
	echo "host: $nsums files read out of the image match the guest's checksums"
else
	head -n 10 "$WORK/sumcheck.out"
	fail "files read out of the image on the host differ from what the guest wrote"
fi
[ "$(readlink "$WORK/out/tree/link-to-small-1")" = small-1 ] || fail "the symlink did not survive"

wl_boot ext4-check "wl=ext4-check" -s 3,virtio-blk,"$WORK/vdb.img"
[ "$WL_STATUS" -eq 0 ] || fail "ext4-check: tinyvmm exit status $WL_STATUS (0 expected)"
assert_contains "$WORK/ext4-check.console" "^ext4-check: $nsums files match" \
	"after the reboot the guest reads back every file"
finish
