#!/usr/bin/env bash
# The VM side of make bench-guest (bench/guest.sh runs it where KVM is: directly on a
# VT-x/AMD-V host, or inside the nested runner's L1). Boots the same kernel and test
# image under each VMM with the same data disk and runs tests/workload/guest.sh
# wl=bench in the guest.
#
# Usage: bench/guest-vm.sh OUTDIR RUNTIME
# Environment: TINYVMM, KERNEL (vmlinux), GIMG (test image), BENCH_VMMS (default
# "tinyvmm qemu-legacy qemu-modern"), BENCH_DATA_DIR (data disk folder, default
# TMPDIR or /tmp), BENCH_DATA_MB (default 256).
# Each VMM boots twice: plain (1 vCPU, one queue: wl=bench) and poll (3 vCPUs,
# three queues on the data disk, one a poll queue: wl=bench-poll).
# Writes OUTDIR/results: "VMM boot-vda-ms N", "VMM TEST iops=N kibs=N status=N", and
# for tinyvmm "tinyvmm TEST exits=N requests=N bar-exits=N irqs=N" (--stats around
# the test).
set -uo pipefail
out=$1 rt=$2
: "${TINYVMM:?}" "${KERNEL:?}" "${GIMG:?}"
vmms=${BENCH_VMMS:-}
[ -n "$vmms" ] || vmms="tinyvmm qemu-legacy qemu-modern"
ddir=${BENCH_DATA_DIR:-${TMPDIR:-/tmp}}
data=$ddir/tinyvmm-bench-guest.$$.img
res=$out/results
: >"$res"
# The fifos live in TMPDIR: OUTDIR may be a 9p share (the nested runner's), which
# has none.
fifos=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-bench-guest.XXXXXX") || exit 1
trap 'rm -rf "$data" "$fifos"' EXIT

cmdline="console=ttyS0 root=/dev/vda ro panic=-1 wl=bench rt=$rt"
head -c $((${BENCH_DATA_MB:-256} * 1048576)) /dev/urandom >"$data" ||
	{ echo "bench-guest: cannot write the data disk $data"; exit 1; }

# The queues boot: three vCPUs and three queues on the data disk, one of them a
# poll queue (virtio_blk.poll_queues=1), where fio's --hipri requests go, and two
# default ones, which two fio jobs on two vCPUs share out.
poll_cmdline="console=ttyS0 root=/dev/vda ro panic=-1 wl=bench-poll rt=$rt virtio_blk.poll_queues=1"

vm_cmd() {	# the command line of VMM for MODE (plain or poll), in VM_CMD
	local cl=$cmdline smp=1 nq=1
	[ "$2" = plain ] || cl=$poll_cmdline smp=3 nq=3
	local qemu=(qemu-system-x86_64 -machine pc,accel=kvm -cpu host -smp "$smp" -m 256M
		-nodefaults -no-user-config -display none -serial stdio -monitor none
		-device isa-debug-exit,iobase=0x501,iosize=1
		-kernel "$KERNEL" -append "$cl"
		-drive file="$GIMG",format=raw,if=none,id=root,readonly=on
		-drive file="$data",format=raw,if=none,id=data)
	case $1 in
	tinyvmm) VM_CMD=("$TINYVMM" --stats -m 256M -c "$smp" -s 2,virtio-blk,"$GIMG",ro,mq=1
			-s 3,virtio-blk,"$data",mq=$nq --cmdline "$cl" "$KERNEL") ;;
	qemu-legacy) VM_CMD=("${qemu[@]}" -device virtio-blk-pci,drive=root,disable-modern=on,num-queues=1
			-device virtio-blk-pci,drive=data,disable-modern=on,num-queues=$nq) ;;
	qemu-modern) VM_CMD=("${qemu[@]}" -object iothread,id=io0
			-device virtio-blk-pci,drive=root,num-queues=1
			-device virtio-blk-pci,drive=data,iothread=io0,num-queues=$nq) ;;
	*) echo "bench-guest: unknown VMM '$1'"; return 1 ;;
	esac
}

# run_vm VMM MODE: boot it, time-stamp its console lines, take tinyvmm's counters
# around each test (SIGUSR2), and append its results (the boot time: plain only).
run_vm() {
	local vmm=$1 mode=$2 fifo=$fifos/$1.fifo con=$out/$1-$2.console err=$out/$1-$2.stderr
	local pid t0 ts line
	vm_cmd "$vmm" "$mode" || return 1
	rm -f "$fifo"
	mkfifo "$fifo"
	t0=$EPOCHREALTIME
	timeout -k 5 $((rt * 6 + 240)) "${VM_CMD[@]}" </dev/null >"$fifo" 2>"$err" &
	pid=$!
	: >"$con"
	while IFS= read -r line; do
		ts=$EPOCHREALTIME
		line=${line%$'\r'}
		printf '%s %s\n' "$ts" "$line" >>"$con"
		case $line in
		"bench: start "*|"bench: end "*)
			# to tinyvmm, not to timeout(1), which SIGUSR2 would end
			[ "$vmm" != tinyvmm ] || pkill -USR2 -P "$pid" -x tinyvmm ;;
		esac
	done <"$fifo"
	wait "$pid"
	# (QEMU's isa-debug-exit makes the guest's status 0 an exit status of 1.)
	echo "bench-guest: $vmm ($mode) exited with status $? ($(grep -c bench-result "$con") results)"
	# The first boot only: a guest that rebooted (panic=-1) reports nothing after it.
	awk -v vmm="$vmm" -v t0="$t0" -v mode="$mode" '
		/\] Command line: / && boots++ { printf "bench-guest: %s: the guest rebooted\n", vmm > "/dev/stderr"; exit }
		/\[vda\]/ && !done && mode == "plain" { printf "%s boot-vda-ms %d\n", vmm, ($1 - t0) * 1000; done = 1 }
		$2 == "bench-result" { $1 = ""; sub(/^ bench-result /, ""); print vmm, $0 }' \
		"$con" >>"$res"
	[ "$vmm" = tinyvmm ] && stats_deltas "$con" "$err" >>"$res"
}

# stats_deltas CONSOLE STDERR: per test, the difference of the counters between the
# snapshots taken at its start and end lines.
stats_deltas() {
	awk '
	FNR == 1 { f++ }
	f == 1 && $2 == "bench:" && $3 == "start" { name[++nt] = $4 }
	f == 2 && /stats: snapshot/ { s++ }
	f == 2 && /stats: exits to user space:/ {
		n = 0; for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) n += kv[2]
		ex[s] = n }
	f == 2 && /stats: port I\/O exits by device:/ {
		n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^virtio-blk@/ && split($i, kv, "=") == 2) n += kv[2]
		bar[s] = n }
	f == 2 && /stats: virtio-blk slot 3:/ {
		n = 0
		for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) {
			if (kv[1] == "requests") rq[s] = kv[2]
			if (kv[1] == "irq-asserts" || kv[1] == "msix-messages") n += kv[2] }
		irq[s] = n }
	END { for (t = 1; t <= nt; t++) { a = 2 * t - 1; b = 2 * t
		if (b > s) break
		printf "tinyvmm %s exits=%d requests=%d bar-exits=%d irqs=%d\n", name[t],
			ex[b] - ex[a], rq[b] - rq[a], bar[b] - bar[a], irq[b] - irq[a] } }' "$1" "$2"
}

for vmm in $vmms; do
	run_vm "$vmm" plain
	run_vm "$vmm" poll
done
cat "$res"
