#!/usr/bin/env bash
# make bench-guest: the same fio jobs inside the same Linux guest kernel and image,
# under tinyvmm and under QEMU (legacy virtio-blk-pci, disable-modern=on: the fair
# peer; and QEMU's default modern virtio-blk with an iothread), on the same data disk.
# Where KVM is as tests/lib.sh picks it: directly on VT-x/AMD-V hosts, in the nested
# runner's L1 elsewhere, with 1 L1 vCPU unless TINYVMM_NESTED_SMP says otherwise (one
# run with 2 hung: L1 went idle mid-run and its own timeouts never fired).
#
# Prints one line per test:
#   RESULT guest-<test> tinyvmm=<n> qemu-legacy=<n> qemu-modern=<n> ratio=<tinyvmm/best qemu>
# (IOPS, or MiB/s for seq-read-128k), tinyvmm's exits to user space per request in
# each test (from --stats snapshots), and each VMM's boot time to the guest's [vda].
# Environment: BENCH_GUEST_RUNTIME (seconds per test, default 5), BENCH_VMMS,
# BENCH_DATA_MB (bench/guest-vm.sh), BENCH_GUEST_OUT (where the consoles and
# counters are kept; default ./bench-guest-out), TINYVMM_RUNNER=direct|nested.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
rt=${BENCH_GUEST_RUNTIME:-5}

die() { echo "bench-guest: error: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 is not installed (scripts/setup.sh --bench installs it)"
KDIR=$(kernel_dir)
[ -s "$KDIR/vmlinux" ] || die "no guest kernel in $KDIR (run images/build-kernel.sh)"
GIMG=$("$top_srcdir/images/make-guest-image.sh" --run "$top_srcdir/tests/workload/guest.sh" \
	--cache 192) || die "cannot build the guest image"
pick_runner || die "$RUNNER_WHY"
echo "bench-guest: kernel $KDIR/vmlinux, image $GIMG, ${rt}s per test, runner $RUNNER"

status=0
TINYVMM_NESTED_SMP=${TINYVMM_NESTED_SMP:-1} RUN_TIMEOUT=1200 \
	run_on_kvm env TINYVMM="$TINYVMM" KERNEL="$KDIR/vmlinux" GIMG="$GIMG" \
	BENCH_DATA_DIR="${BENCH_DATA_DIR:-/tmp}" BENCH_VMMS="${BENCH_VMMS:-}" \
	BENCH_DATA_MB="${BENCH_DATA_MB:-256}" bash "$here/guest-vm.sh" "$WORK" "$rt" || status=$?
# Keep the consoles and counters (WORK goes when this script ends).
keep=${BENCH_GUEST_OUT:-$PWD/bench-guest-out}
mkdir -p "$keep" && cp "$WORK"/*.console "$WORK"/*.stderr "$WORK"/results "$keep"/ 2>/dev/null
echo "bench-guest: consoles and counters in $keep"
[ -s "$WORK/results" ] || die "no results (status $status); see above"
[ "$status" -eq 0 ] || echo "bench-guest: warning: the VM side exited with status $status"

awk '
function val(v, t) { return (t == "seq-read-128k") ? v["kibs"] / 1024 : v["iops"] }
$2 == "boot-vda-ms" { boot[$1] = $3; next }
$1 == "tinyvmm" && $3 ~ /^exits=/ {
	for (i = 3; i <= NF; i++) { split($i, kv, "="); st[$2, kv[1]] = kv[2] }
	next }
{	delete v; for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (!($2 in seen)) { seen[$2] = 1; order[++nt] = $2 }
	r[$2, $1] = (v["status"] == 0) ? val(v, $2) : -1 }
END {
	for (k = 1; k <= nt; k++) {
		t = order[k]; best = 0
		line = sprintf("RESULT guest-%s", t)
		n = split("tinyvmm qemu-legacy qemu-modern", vm, " ")
		for (j = 1; j <= n; j++) {
			x = ((t, vm[j]) in r) ? r[t, vm[j]] : -1
			line = line sprintf(" %s=%s", vm[j], x < 0 ? "n/a" : sprintf("%.0f", x))
			if (j > 1 && x > best) best = x }
		tv = ((t, "tinyvmm") in r) ? r[t, "tinyvmm"] : -1
		line = line sprintf(" ratio=%s", (best > 0 && tv >= 0) ? sprintf("%.2f", tv / best) : "n/a")
		if ((t, "requests") in st && st[t, "requests"] > 0)
			line = line sprintf(" tinyvmm-exits-per-request=%.3f (bar-reads %.3f) interrupts-per-request=%.3f",
				st[t, "exits"] / st[t, "requests"], st[t, "bar-exits"] / st[t, "requests"],
				st[t, "irqs"] / st[t, "requests"])
		print line }
	printf "RESULT guest-boot-to-vda-ms"
	n = split("tinyvmm qemu-legacy qemu-modern", vm, " ")
	for (j = 1; j <= n; j++) printf " %s=%s", vm[j], (vm[j] in boot) ? boot[vm[j]] : "n/a"
	printf "\n" }' "$WORK/results" | tee "$WORK/RESULT"
echo "bench-guest: units: IOPS; seq-read-128k in MiB/s; runner $RUNNER$RUNNER_NOTE"
