#!/usr/bin/env bash
# A Linux guest whose disks are both network disks: the root file system is
# the test image converted to qcow2 and served by qemu-nbd (so qcow2 works
# through the NBD engine), and vdb is a raw file served by nbdkit's file
# plugin.  The guest makes an ext4 file system on vdb, copies a tree in,
# records its checksums, syncs and unmounts (FLUSH over NBD); the host then
# checks the file nbdkit wrote: e2fsck -fn, and every file read out of it
# against the guest's checksums.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"

for t in qemu-img qemu-nbd nbdkit; do
	command -v "$t" >/dev/null ||
		fail "$t is not installed (Debian packages qemu-utils and nbdkit; scripts/setup.sh installs them)"
done
[ "$FAILED" -eq 0 ] || finish

qemu-img convert -f raw -O qcow2 "$GIMG" "$WORK/root.qcow2" ||
	{ fail "qemu-img convert of the guest image to qcow2 failed"; finish; }
truncate -s 64M "$WORK/vdb.img"

RUN_TIMEOUT=${RUN_TIMEOUT:-300} run_on_kvm bash "$top_srcdir/tests/workload/nbd-run.sh" \
	"$TINYVMM" "$KDIR/vmlinux" "$WORK/root.qcow2" "$WORK/vdb.img" "$WORK" \
	"$(wl_cmdline wl=ext4-write)"
rc=$?
echo "--- nbd: guest lines ---"
grep -E '^(ext4-|guest)|I/O error|EXT4-fs error|Kernel panic' "$WORK/nbd.console" |
	grep -v '^ext4-sum:' | head -40
echo "--- nbd: tinyvmm stderr ---"
cat "$WORK/nbd.stderr"
[ "$rc" -ne 125 ] || { fail "the nested-KVM harness failed"; finish; }
[ "$rc" -ne 3 ] || { cat "$WORK"/qemu-nbd.log "$WORK"/nbdkit.log; fail "an NBD server did not start"; finish; }
[ "$rc" -eq 0 ] || fail "tinyvmm exit status $rc (0 expected)"
assert_contains "$WORK/nbd.console" '^ext4-write: done' "the guest, booted from qcow2 over NBD, wrote the tree"

wl_check_tree "$WORK/nbd.console" "$WORK/vdb.img" "nbdkit's file"
finish
