#!/usr/bin/env bash
# The KVM side of tests/workload/discard.sh (through run_on_kvm, so possibly
# inside the nested L1 guest): put the images in a directory that punches holes,
# record their allocated blocks, boot the guest, record them again, copy the
# images back to WORK for the host's content checks.
# Usage: discard-run.sh TINYVMM VMLINUX GUEST_IMAGE WORK CMDLINE RANGE
# Writes WORK/blocks ("NAME before|after BLOCKS" lines) and the console
# and stderr to WORK/discard.{console,stderr}; exits with tinyvmm's status.
. "$(dirname "$0")/../punch.sh"
set -u
tinyvmm=$1 kernel=$2 gimg=$3 work=$4 cmdline=$5 range=$6

dir=$(first_punch_dir "$work" "${TMPDIR:-/tmp}" /dev/shm) ||
	{ echo "discard-run: no directory here punches holes" >&2; exit 3; }
if [ "$dir" != "$work" ]; then
	dir=$(mktemp -d "$dir/tinyvmm-discard.XXXXXX")
	cp --sparse=always "$work"/vd[bcd].img "$dir/"
fi
: >"$work/blocks"
for d in vdb vdc vdd; do
	echo "$d before $(stat -c %b "$dir/$d.img")" >>"$work/blocks"
done
"$tinyvmm" -m 256M -s 2,virtio-blk,"$gimg",ro -s 3,virtio-blk,"$dir/vdb.img" \
	-s 4,virtio-blk,"$dir/vdc.img",writeback -s 5,virtio-blk,"$dir/vdd.img",range="$range" \
	--cmdline "$cmdline" "$kernel" </dev/null >"$work/discard.console" 2>"$work/discard.stderr"
rc=$?
for d in vdb vdc vdd; do
	echo "$d after $(stat -c %b "$dir/$d.img")" >>"$work/blocks"
done
if [ "$dir" != "$work" ]; then
	cp --sparse=always "$dir"/vd[bcd].img "$work/"
	rm -rf "$dir"
fi
exit $rc
