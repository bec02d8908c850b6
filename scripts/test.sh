#!/usr/bin/env bash
# Every test tinyvmm has: unit tests, CLI error tests and boot tests in a
# normal build and in an ASan+UBSan build, then make distcheck.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/setup.sh --no-demo || exit 1
export TINYVMM_KERNEL_DIR TINYVMM_KERNEL_NONAMES_DIR TINYVMM_GUEST_IMAGE
TINYVMM_KERNEL_DIR=$(images/build-kernel.sh --print-dir)
# The same kernel without feature names, for tests/boot/pvm-hiding.sh (cached).
TINYVMM_KERNEL_NONAMES_DIR=$(images/build-kernel.sh --no-feature-names | tail -n 1) || exit 1
# The workload tests' guest image (tests/workload/; cached, setup.sh built it).
TINYVMM_GUEST_IMAGE=$(images/make-guest-image.sh --run tests/workload/guest.sh --cache 192 | tail -n 1) || exit 1
echo "test: host kind $(build/tinyvmm --print-host-kind); kernels $TINYVMM_KERNEL_DIR, $TINYVMM_KERNEL_NONAMES_DIR"

status=0
summary() {	# summary DIR: add up automake's per-test results
	cat "$1"/tests/unit/*.trs "$1"/tests/*/*.trs 2>/dev/null |
		awk '/^:test-result:/ { n[$2]++ } END { printf "%d %d %d\n", n["PASS"], n["FAIL"] + n["ERROR"] + n["XPASS"], n["SKIP"] }'
}
# Cases a unit test skipped (cmocka's skip()): "COUNT program:case ...".  automake
# sees only the program, which passes with them, so they are counted here.
cases_skipped() {	# cases_skipped DIR
	local log n=0 k names=""
	for log in "$1"/tests/unit/*.log; do
		[ -f "$log" ] || continue
		case $log in */test-suite.log) continue ;; esac
		k=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:$/\1/p' "$log" |
			awk '{ s += $1 } END { print s + 0 }')
		n=$((n + k))
		[ "$k" -eq 0 ] || names="$names $(sed -n 's/^\[  SKIPPED \] \([^ ]*\)$/\1/p' "$log" |
			sort -u | sed "s|^|$(basename "$log" .log):|" | tr '\n' ' ')"
	done
	echo "$n$names"
}
# Failure lines: cmocka's (a fail_msg()'s text is the line before "[  ERROR   ]", a failed
# assert's is "FILE:LINE: error: ..."), and automake's "FAIL " ones.
fail_re='\[  FAILED  \]|\[  ERROR   \]|Failure!|error:|FAIL '
run_check() {	# run_check NAME DIR CONFIGURE-ARGS...
	local name=$1 dir=$2
	shift 2
	echo "=== $name: make check in $dir"
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || "$top/configure" -q "$@"; } && make -s -j"$(nproc)" &&
		make -s -j"$(nproc)" check) || status=1
	for log in "$dir"/tests/*/*.log; do
		case $log in */test-suite.log) continue ;; esac
		if grep -q '^:test-result: \(FAIL\|ERROR\)' "${log%.log}.trs" 2>/dev/null; then
			# A unit test runs several cmocka groups and the tail shows only
			# the last: the failure lines come from the whole log first.
			if grep -q -E "$fail_re" "$log"; then
				echo "--- $log: failure lines, 8 before each (whole log, numbered)"
				grep -n -B8 -E "$fail_re" "$log" | head -n 60
			fi
			echo "--- $log: last 40 lines"
			tail -n 40 "$log"
		fi
		grep -h '^SKIP ' "$log" 2>/dev/null || true
	done
	read -r p f s < <(summary "$dir")
	read -r c cnames < <(cases_skipped "$dir")
	echo "$name: $p passed, $f failed, $s skipped; $c case(s) skipped inside passing unit tests${cnames:+: $cnames}"
	total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
	total_c=$((total_c + c))
}
total_p=0; total_f=0; total_s=0; total_c=0

run_check default build
# The crash test's 10 kill points per mode ran in the default build; the sanitizer
# build runs fewer (each point is a Linux boot), so CI stays within its time.
echo "test: sanitizer build: tests/workload/crash.sh with 3 kill points per records mode and 1 for ext4"
TINYVMM_CRASH_POINTS=3 TINYVMM_CRASH_EXT4_POINTS=1 run_check sanitizers build-asan --enable-sanitizers

echo "=== make distcheck"
# Boot tests already ran twice above; distcheck proves the tarball builds and passes.
if (cd build && TINYVMM_SKIP_BOOT=1 make -s distcheck >"$top/build/distcheck.log" 2>&1); then
	echo "distcheck: passed"
	total_p=$((total_p + 1))
else
	tail -n 60 build/distcheck.log
	echo "distcheck: FAILED"
	total_f=$((total_f + 1))
	status=1
fi

[ "$total_f" -eq 0 ] || status=1
[ "$total_s" -eq 0 ] || echo "NOTE: $total_s test(s) were SKIPPED and did not run (see the SKIP lines above)"
[ "$total_c" -eq 0 ] ||
	echo "NOTE: $total_c case(s) inside passing unit tests were SKIPPED and did not run (named above)"
echo "tinyvmm: $total_p passed, $total_f failed, $total_s skipped; $total_c case(s) skipped inside them"
exit $status
