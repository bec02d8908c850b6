#!/bin/sh
# SPDX-License-Identifier: MIT
#
# make bench: tinyvmm's virtio-blk device (driven by bench/blkbench, no VM)
# against fio on the same file, same block size, queue depth, buffered I/O
# and sync semantics.  See bench/README and docs/PERFORMANCE.md.
#
# Environment:
#   BLKBENCH       the harness (default ./bench/blkbench)
#   BENCH_DIR      where the test file goes (default $TMPDIR, else /tmp)
#   BENCH_SIZE_MB  test file size in MiB (default 1024)
#   BENCH_RUNTIME  seconds per run, each side (default 1)
#   BENCH_ROUNDS   rounds, each one fio run then one tinyvmm run per
#                  engine (default 5); the round with the median
#                  tinyvmm/fio ratio is reported, so that a drift of the
#                  disk's flush latency during the run hits both sides
#   BENCH_ENGINES  virtio-blk aio engines to run, e.g. "threads io_uring"
#                  (default: both when the device accepts aio=, else the
#                  built-in one, reported as "threads")
#   BENCH_TESTS    only the tests whose name matches this grep -E pattern
#   BENCH_BLK_OPTS extra virtio-blk options appended to every device string
#   BENCH_HALT_POLL_US  blkbench --halt-poll-us: the most its driver polls
#                  for the interrupt, as KVM's halt_poll_ns (default 200)
#   BLKBENCH_BASE  a second blkbench (a build of older code) run in the same
#                  rounds, against the same fio run, in alternating order
#                  with BLKBENCH: an A/B comparison of two versions of the
#                  device in one run, without the drift between two runs
#
# Ends with one line per test and engine:
#   RESULT <test> tinyvmm=<n> fio=<n> ratio=<tinyvmm/fio>
# and, with BLKBENCH_BASE, one more per test and engine:
#   BASE <test> base=<n> ratio=<base/fio> change=<median ratio new/base - 1>
# (IOPS for the 4 KiB tests, MB/s for the 128 KiB ones).
set -eu

BLKBENCH=${BLKBENCH:-./bench/blkbench}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
SIZE_MB=${BENCH_SIZE_MB:-1024}
RUNTIME=${BENCH_RUNTIME:-1}
ROUNDS=${BENCH_ROUNDS:-5}
TESTS_RE=${BENCH_TESTS:-.}
EXTRA_OPTS=${BENCH_BLK_OPTS:-}
HALT_POLL_US=${BENCH_HALT_POLL_US:-200}
QSIZE=256

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$BLKBENCH" ] || die "$BLKBENCH not built (make bench builds it)"
BASE=${BLKBENCH_BASE:-}
[ -z "$BASE" ] || [ -x "$BASE" ] || die "BLKBENCH_BASE=$BASE is not an executable blkbench"
command -v fio >/dev/null 2>&1 || die "fio not found: install the Debian package fio"
[ -d "$BENCH_DIR" ] || die "BENCH_DIR=$BENCH_DIR is not a directory"
case $ROUNDS in ''|*[!0-9]*|0) die "BENCH_ROUNDS=$ROUNDS: expected a count of 1 or more" ;; esac
case $RUNTIME in ''|*[!0-9]*|0) die "BENCH_RUNTIME=$RUNTIME: expected whole seconds, 1 or more" ;; esac
case $HALT_POLL_US in ''|*[!0-9]*) die "BENCH_HALT_POLL_US=$HALT_POLL_US: expected microseconds" ;; esac
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null; then
	PARSER=python3
else
	PARSER=awk
fi

FILE=$BENCH_DIR/tinyvmm-bench.$$.img
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinyvmm-bench.XXXXXX")
trap 'rm -rf "$WORK" "$FILE"' EXIT INT TERM

START=$(date +%s)
echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
echo "bench: test file $FILE (${SIZE_MB} MiB) on: $(df -P "$BENCH_DIR" | awk 'NR==2 {print $1 " mounted on " $6}')"
echo "bench: fio $(fio --version), ${RUNTIME}s per run, $ROUNDS rounds (the round with the median ratio reported), parser $PARSER"
echo "bench: $("$BLKBENCH" --host-costs)"
echo "bench: blkbench's driver polls for interrupts up to ${HALT_POLL_US} us (KVM halt polling)"
[ -z "$BASE" ] || echo "bench: A/B: base $BASE runs in the same rounds, order alternating"

# Same starting state for both sides: the whole file written (no holes, so
# neither side measures block allocation), synced, and resident in the page
# cache (24 GiB here, so 1 GiB stays cached): without direct a guest's
# steady state is page-cache hits for reads and page-cache writes plus
# RWF_DSYNC (writethru) or nothing (writeback); the direct rows go to the
# disk on both sides.
echo "bench: preparing the test file"
dd if=/dev/urandom of="$FILE" bs=1M count="$SIZE_MB" conv=fsync status=none
cat "$FILE" >/dev/null

# Which engines the device accepts.
if [ -n "${BENCH_ENGINES:-}" ]; then
	ENGINES=$BENCH_ENGINES
elif "$BLKBENCH" --probe "$FILE,aio=threads" >/dev/null 2>&1 &&
     "$BLKBENCH" --probe "$FILE,aio=io_uring" >/dev/null 2>&1; then
	ENGINES="threads io_uring"
else
	ENGINES=default
	echo "bench: the device does not take aio= yet: running its built-in worker threads only"
fi

# name rw bs qd cache mode; mode "direct": O_DIRECT on both sides (fio
# --direct=1, the device's direct option; the page cache is out of the
# picture, the disk is in); mode "nbd": both sides talk to one nbdkit file
# export of the test file on a unix socket (fio's nbd engine, the device's
# NBD engine), so the server and its page cache are the same for both; mode
# "polldrv": blkbench's driver polls the used ring with interrupts off, as a
# Linux poll queue (virtio_blk.poll_queues=, io_uring IOPOLL) does, against
# the same fio.
TESTS="randread-4k-qd1 randread 4096 1 - -
randread-4k-qd32 randread 4096 32 - -
randwrite-4k-qd1-writethru randwrite 4096 1 writethru -
randwrite-4k-qd32-writethru randwrite 4096 32 writethru -
randwrite-4k-qd1-writeback randwrite 4096 1 writeback -
randwrite-4k-qd32-writeback randwrite 4096 32 writeback -
seqread-128k-qd1 read 131072 1 - -
seqread-128k-qd32 read 131072 32 - -
seqwrite-128k-qd1-writethru write 131072 1 writethru -
seqwrite-128k-qd32-writethru write 131072 32 writethru -
seqwrite-128k-qd1-writeback write 131072 1 writeback -
seqwrite-128k-qd32-writeback write 131072 32 writeback -
randread-4k-qd1-polldrv randread 4096 1 - polldrv
randwrite-4k-qd1-writeback-polldrv randwrite 4096 1 writeback polldrv
randread-4k-qd1-direct randread 4096 1 - direct
randread-4k-qd32-direct randread 4096 32 - direct
randwrite-4k-qd32-writeback-direct randwrite 4096 32 writeback direct
seqread-128k-qd32-direct read 131072 32 - direct
nbd-randread-4k-qd1 randread 4096 1 - nbd
nbd-randread-4k-qd32 randread 4096 32 - nbd
nbd-randwrite-4k-qd32-writeback randwrite 4096 32 writeback nbd
nbd-seqread-128k-qd32 read 131072 32 - nbd
nbd-seqwrite-128k-qd32-writethru write 131072 32 writethru nbd"
TESTS=$(echo "$TESTS" | grep -E "^[^ ]*($TESTS_RE)" || true)
[ -n "$TESTS" ] || die "BENCH_TESTS=$TESTS_RE matches no test"

# The NBD rows need nbdkit and fio's nbd engine; without them they are
# left out, loudly.
NBD_URI=
if echo "$TESTS" | grep -q ' nbd$'; then
	if ! command -v nbdkit >/dev/null 2>&1; then
		echo "bench: nbdkit not found (Debian package nbdkit): the nbd rows are LEFT OUT"
	elif ! fio --enghelp=nbd >/dev/null 2>&1; then
		echo "bench: this fio has no nbd engine: the nbd rows are LEFT OUT"
	else
		nbdkit --unix "$WORK/nbd.sock" --foreground --exit-with-parent \
			file file="$FILE" >"$WORK/nbdkit.log" 2>&1 &
		NBDKIT_PID=$!
		trap 'kill "$NBDKIT_PID" 2>/dev/null; rm -rf "$WORK" "$FILE"' EXIT INT TERM
		n=0
		while [ ! -S "$WORK/nbd.sock" ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
		[ -S "$WORK/nbd.sock" ] || { cat "$WORK/nbdkit.log" >&2; die "nbdkit did not start"; }
		NBD_URI="nbd+unix:///?socket=$WORK/nbd.sock"
		echo "bench: nbd rows: nbdkit $(nbdkit --version | cut -d' ' -f2) file plugin on $NBD_URI"
	fi
	[ -n "$NBD_URI" ] || TESTS=$(echo "$TESTS" | grep -v ' nbd$' || true)
	[ -n "$TESTS" ] || die "no test left to run"
fi
NTESTS=$(echo "$TESTS" | wc -l)

# fio JSON (or terse) -> "iops mbps p50_us p99_us cpu_pct"
fio_parse() {
	if [ "$PARSER" = python3 ]; then
		python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
j = d["jobs"][0]
s = j["read" if sys.argv[2] == "read" else "write"]
p = s.get("clat_ns", {}).get("percentile", {})
print("%.0f %.1f %.1f %.1f %.0f" % (s["iops"], s["bw_bytes"] / 1e6,
      p.get("50.000000", 0) / 1e3, p.get("99.000000", 0) / 1e3,
      j["usr_cpu"] + j["sys_cpu"]))
EOF
	else
		# terse v3: read iops $8, bw KiB/s $7; write iops $49, bw $48
		awk -F';' -v dir="$2" '/^3;/ {
			if (dir == "read") { iops = $8; bw = $7 } else { iops = $49; bw = $48 }
			printf "%.0f %.1f 0 0 0\n", iops, bw * 1024 / 1e6 }' "$1"
	fi
}

# blkbench summary line -> "iops mbps p50_us p99_us cpu_pct"
bb_parse() {
	sed -n 's/.* iops=\([0-9.]*\) mbps=\([0-9.]*\) p50_us=\([0-9.]*\) p99_us=\([0-9.]*\) cpu_pct=\([0-9.]*\).*/\1 \2 \3 \4 \5/p' "$1"
}

# The round (1-based) whose tinyvmm/fio ratio on column $3 is the median,
# from the per-round lines "iops mbps p50 p99 cpu" of $1 (tinyvmm) and $2
# (fio).  Pairing by round keeps a drift of the disk (writethru) out of
# the ratio: both sides of a round ran within seconds of each other.
median_round() {
	paste -d' ' "$1" "$2" | awk -v c="$3" '{ f = $(c + 5); printf "%d %.6f\n", NR, (f > 0 ? $c / f : 0) }' |
		sort -g -k 2 | sed -n "$(( ($(wc -l <"$1") + 1) / 2 ))p" | cut -d' ' -f1
}

# bb_run HARNESS ENGINE RUNS: one blkbench run of the current test; its
# "iops mbps p50 p99 cpu" line is appended to RUNS.
bb_run() {
	runs=$3
	aio=
	case $2 in default|nbd) ;; *) aio=",aio=$2" ;; esac
	sync
	"$1" --disk "$disk,qsize=$QSIZE$devcache$aio${EXTRA_OPTS:+,$EXTRA_OPTS}" \
		--rw="$rw" --bs="$bs" --qd="$qd" --runtime="$RUNTIME" $bbflags \
		--halt-poll-us="$HALT_POLL_US" >"$WORK/bb.out" 2>"$WORK/bb.err" ||
		{ cat "$WORK/bb.err" "$WORK/bb.out" >&2; die "$1 failed for $name ($2)"; }
	set -- $(bb_parse "$WORK/bb.out")
	[ $# -eq 5 ] || { cat "$WORK/bb.out" >&2; die "cannot parse blkbench output"; }
	echo "$*" >>"$runs"
}

# base_report ENGINE LABEL: the base's median-round ratio to fio, and the
# change new/base as the median over rounds of the two runs' quotient
# (both ran against the same fio run, seconds apart).
base_report() {
	br=$(median_round "$WORK/base.$1.runs" "$WORK/fio.runs" "$col")
	b=$(sed -n "${br}p" "$WORK/base.$1.runs" | cut -d' ' -f"$col")
	f=$(sed -n "${br}p" "$WORK/fio.runs" | cut -d' ' -f"$col")
	b_ratio=$(awk -v t="$b" -v f="$f" 'BEGIN { if (f > 0) printf "%.2f", t / f; else print "nan" }')
	b_all=$(cut -d' ' -f"$col" "$WORK/base.$1.runs" | tr '\n' ' ')
	change=$(paste -d' ' "$WORK/bb.$1.runs" "$WORK/base.$1.runs" |
		awk -v c="$col" '{ b = $(c + 5); printf "%.6f\n", (b > 0 ? $c / b : 0) }' | sort -g |
		awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
			printf "%+.1f%%", (m - 1) * 100 }')
	echo "        base:   ${b_all}| ratio $b_ratio (round $br) | change new/base, median of rounds: $change"
	echo "BASE $name-$2 base=$b ratio=$b_ratio change=$change" >>"$RESULTS"
}

RESULTS=$WORK/results
: >"$RESULTS"
i=0
echo "$TESTS" | while read -r name rw bs qd cache direct; do
	i=$((i + 1))
	case $rw in *read) dir=read ;; *) dir=write ;; esac
	# fio: psync is the cheapest engine at QD1; io_uring keeps 32 buffered
	# requests in flight (libaio would be synchronous for buffered I/O).
	if [ "$qd" -eq 1 ]; then fengine=psync; else fengine=io_uring; fi
	fsync=
	[ "$cache" = writethru ] && fsync=--fdatasync=1
	# fio's target, and the device's disk and engines
	fname=$FILE furi= disk=$FILE engines=$ENGINES
	if [ "$direct" = nbd ]; then
		fengine=nbd fname= furi=$NBD_URI disk=$NBD_URI engines=nbd
		# fio's nbd engine has no fdatasync; its fsync is NBD_CMD_FLUSH
		[ -z "$fsync" ] || fsync=--fsync=1
	fi
	devcache=
	[ "$cache" != - ] && devcache=",$cache"
	fdirect=0
	bbflags=
	[ "$direct" = polldrv ] && bbflags=--poll-driver
	if [ "$direct" = direct ]; then
		fdirect=1
		devcache="$devcache,direct"
	fi
	# the column the ratio is taken on: IOPS, or MB/s for 128 KiB
	if [ "$bs" -ge 131072 ]; then col=2; else col=1; fi

	: >"$WORK/fio.runs"
	for eng in $engines; do : >"$WORK/bb.$eng.runs"; : >"$WORK/base.$eng.runs"; done
	base_ok=
	if [ -n "$BASE" ]; then
		if [ -n "$bbflags" ] && ! "$BASE" --help 2>&1 | grep -q -- "$bbflags"; then
			echo "bench: the base blkbench has no $bbflags: no base numbers for $name"
		elif "$BASE" --probe "$disk,qsize=$QSIZE$devcache${EXTRA_OPTS:+,$EXTRA_OPTS}" >/dev/null 2>&1; then
			base_ok=1
		else
			echo "bench: the base device refuses 'qsize=$QSIZE$devcache${EXTRA_OPTS:+,$EXTRA_OPTS}': no base numbers for $name"
		fi
	fi
	round=0
	while [ "$round" -lt "$ROUNDS" ]; do
		round=$((round + 1))
		# Each run starts with no dirty pages left by the one before.
		sync
		# (an engine's own options, --uri, come after --ioengine)
		fio --name="$name" ${fname:+--filename="$fname"} ${fname:+--invalidate=0} \
			--size="${SIZE_MB}M" --rw="$rw" --bs="$bs" \
			--iodepth="$qd" --ioengine="$fengine" ${furi:+--uri="$furi"} --direct="$fdirect" \
			--randrepeat=0 --norandommap --time_based --runtime="$RUNTIME" \
			${fsync:+"$fsync"} --output-format="$( [ "$PARSER" = python3 ] && echo json || echo terse)" \
			--output="$WORK/fio.out" >/dev/null 2>"$WORK/fio.err" ||
			{ cat "$WORK/fio.err" >&2; die "fio failed for $name"; }
		fio_parse "$WORK/fio.out" "$dir" >>"$WORK/fio.runs"

		# With a base, its run and the new one swap places every round.
		for eng in $engines; do
			if [ -n "$base_ok" ] && [ $((round % 2)) -eq 0 ]; then
				bb_run "$BASE" "$eng" "$WORK/base.$eng.runs"
			fi
			bb_run "$BLKBENCH" "$eng" "$WORK/bb.$eng.runs"
			if [ -n "$base_ok" ] && [ $((round % 2)) -eq 1 ]; then
				bb_run "$BASE" "$eng" "$WORK/base.$eng.runs"
			fi
		done
	done

	f_all=$(cut -d' ' -f"$col" "$WORK/fio.runs" | tr '\n' ' ')
	for eng in $engines; do
		label=$eng
		[ "$eng" = default ] && label=threads
		r=$(median_round "$WORK/bb.$eng.runs" "$WORK/fio.runs" "$col")
		set -- $(sed -n "${r}p" "$WORK/fio.runs")
		f_iops=$1 f_mbps=$2 f_p50=$3 f_p99=$4 f_cpu=$5
		set -- $(sed -n "${r}p" "$WORK/bb.$eng.runs")
		t_iops=$1 t_mbps=$2 t_p50=$3 t_p99=$4 t_cpu=$5
		t_all=$(cut -d' ' -f"$col" "$WORK/bb.$eng.runs" | tr '\n' ' ')
		if [ "$col" -eq 2 ]; then t=$t_mbps f=$f_mbps; else t=$t_iops f=$f_iops; fi
		ratio=$(awk -v t="$t" -v f="$f" 'BEGIN { if (f > 0) printf "%.2f", t / f; else print "nan" }')
		printf '[%2d/%d] %-30s %-8s tinyvmm %8s IOPS %8s MB/s p50 %7sus p99 %8sus cpu %4s%% | fio(%s) %8s IOPS %8s MB/s p50 %7sus p99 %8sus cpu %4s%% | ratio %s\n' \
			"$i" "$NTESTS" "$name" "$label" "$t_iops" "$t_mbps" "$t_p50" "$t_p99" "$t_cpu" \
			"$fengine" "$f_iops" "$f_mbps" "$f_p50" "$f_p99" "$f_cpu" "$ratio"
		echo "        rounds: tinyvmm ${t_all}| fio ${f_all}| median ratio: round $r"
		echo "RESULT $name-$label tinyvmm=$t fio=$f ratio=$ratio" >>"$RESULTS"
		if [ -n "$base_ok" ]; then base_report "$eng" "$label"; fi
	done
done

echo "bench: done in $(( $(date +%s) - START ))s"
cat "$RESULTS"
