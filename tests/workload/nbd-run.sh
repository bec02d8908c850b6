#!/usr/bin/env bash
# The KVM side of tests/workload/nbd.sh (through run_on_kvm, so possibly
# inside the nested L1 guest): serve the root disk, a qcow2 image, with
# qemu-nbd, and vdb, a raw file, with nbdkit's file plugin, both on unix
# sockets in a local temporary directory (9p cannot hold sockets); boot the
# guest with both disks over NBD; stop the servers.
# Usage: nbd-run.sh TINYVMM VMLINUX ROOT_QCOW2 VDB_IMAGE WORK CMDLINE
# Console and stderr go to WORK/nbd.{console,stderr}, the servers' to
# WORK/{qemu-nbd,nbdkit}.log; exits with tinyvmm's status (3: a server did
# not come up).
set -u
tinyvmm=$1 kernel=$2 root=$3 vdb=$4 work=$5 cmdline=$6

dir=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-nbd.XXXXXX") || exit 3
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

wait_sock() {	# wait_sock PATH PID: up to 10 s for a server's socket
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

qemu-nbd --read-only --persistent --format=qcow2 --socket="$dir/root.sock" "$root" \
	>"$work/qemu-nbd.log" 2>&1 &
pids+=($!)
wait_sock "$dir/root.sock" $! || { echo "nbd-run: qemu-nbd did not start" >&2; exit 3; }
nbdkit --foreground --unix "$dir/vdb.sock" file file="$vdb" >"$work/nbdkit.log" 2>&1 &
pids+=($!)
wait_sock "$dir/vdb.sock" $! || { echo "nbd-run: nbdkit did not start" >&2; exit 3; }

"$tinyvmm" --stats -m 256M -s 2,virtio-blk,"nbd+unix:///?socket=$dir/root.sock",ro \
	-s 3,virtio-blk,"nbd+unix:///?socket=$dir/vdb.sock" \
	--cmdline "$cmdline" "$kernel" </dev/null >"$work/nbd.console" 2>"$work/nbd.stderr"
