#!/usr/bin/env bash
# Freestanding test guests (guest-tests/blktest.elf) against tinyvmm's
# virtio-blk device: the driver path, completion by interrupt, and hostile
# requests and rings.  All cases run in ONE run_on_kvm call of
# tests/guest/cases.sh (one tinyvmm boot per case); then, here, each case's
# exit status (0x50 = the guest's checks passed), the absence of sanitizer
# reports, and the disk image are checked: the image must be the original
# plus exactly the case's valid writes.  One line per case: PASS/FAIL NAME.
# Freestanding guests need no guest user space and run fast in KVM's
# instruction emulator: on PVM hosts they run directly too.
RUNNER_PVM_OK=1
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# One line per case, in the log and, through the fd 9 that Makefile.am's
# AM_TESTS_FD_REDIRECT opens, in make check's own output.
say() {
	echo "$*"
	if { true >&9; } 2>/dev/null; then
		echo "$*" >&9
	fi
}

GUEST=${TINYVMM_GUEST_ELF:-$top_builddir/guest-tests/blktest.elf}
GUEST_PASS=80		# 0x50, guest-tests/lib.h EXIT_PASS
SERIAL=tvmm-guest-0123456
SECTORS=2048		# 1 MiB images

if [ ! -s "$GUEST" ]; then
	echo "ERROR $TEST_NAME: $GUEST is missing (make check builds it)"
	exit 99
fi
need_kvm

# NAME | disk options | guest cmdline | valid writes: "SECTOR:COUNT:SEED ..." in
# image sectors, applied in order | writes that may or may not have happened
# (reset in flight).  The pattern of sector k of a write with seed S: byte
# i = (S + 7k + i) & 0xff; seed z: zeros (WRITE_ZEROES, DISCARD).  dwz_*
# cases run on an image in a directory that punches holes (cases.sh).
CASES="
driver|,serial=$SERIAL|cap=$SECTORS serial=$SERIAL|100:4:0x11|
get_id_short|,serial=$SERIAL|serial=$SERIAL|3:1:0x19|
irq|||200:1:0x22|
msix|||210:1:0x26 211:1:0x27 212:1:0x28 214:1:0x2c 213:1:0x29|
msix_misuse|||215:1:0x2a 216:1:0x2b|
ro|,ro|||
range|,range=1024/512|cap=512|1034:1:0x33 1535:1:0x34|
past_capacity||cap=$SECTORS|2047:1:0x44|
overflow64|||1:1:0x55|
badlen|||21:1:0x66|
unknown_type|||31:1:0x77|
short_header|||41:1:0x88|
status_readonly|||51:1:0x99|
status_zero_len|||61:1:0xaa|
chain_loop|||71:1:0xbb|
next_oob|||81:1:0xcc|
indirect_ok|||90:1:0xdd|
indirect_loop|||111:1:0x12|
indirect_nested|||121:1:0x13|
indirect_badlen|||126:1:0x14|
addr_outside|||131:1:0x15|
addr_straddle|||141:1:0x16|
pfn_outside|||151:1:0x17|
notify_bad_queue|||161:1:0x18|
mq_misuse|,mq=2||217:1:0x2d 218:1:0x2e|
avail_jump|||171:1:0x1b|
reset_inflight|||199:1:0x5a|$(for i in $(seq 0 15); do printf '%d:1:%#x ' $((180 + i)) $((0x20 + i)); done)
any_layout|||5:2:0x1c|
avail_bad_head|||176:1:0x1e|
regs_misuse|||177:1:0x1f|
dwz_driver||cap=$SECTORS|400:16:0x23 420:8:0x24 402:2:z 406:4:z 412:2:z 420:2:z 424:2:z|
dwz_hostile||cap=$SECTORS|430:4:0x25 432:2:z|
dwz_ro|,ro|||
dwz_range|,range=1024/512|cap=512|1534:2:z 1024:2:z|
batch|||$(for i in $(seq 0 79); do printf '%d:1:%#x ' $((300 + i)) $((0x40 + i)); done)|
event_idx|||$(for i in $(seq 0 23); do printf '%d:1:%#x ' $((600 + i)) $((0x70 + i)); done)$(for i in $(seq 0 7); do printf '%d:1:%#x ' $((630 + i)) $((0x90 + i)); done)|
sigterm_storm|,writeback|||$(for i in $(seq 0 63); do printf '%d:1:%#x ' $((500 + i)) $((0x60 + i)); done)
"

# 768 bytes 0..255 three times: a pattern sector is a 512-byte slice of it.
for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done >"$WORK/ramp1"
cat "$WORK/ramp1" "$WORK/ramp1" "$WORK/ramp1" >"$WORK/ramp"
pattern_sector() {	# SEED K > 512 bytes
	if [ "$1" = z ]; then
		head -c 512 /dev/zero
		return
	fi
	tail -c +$(((($1 + 7 * $2) & 255) + 1)) "$WORK/ramp" | head -c 512
}
seed_of() {		# SEED: z as it is, a number in decimal
	if [ "$1" = z ]; then echo z; else echo $(($1)); fi
}
sector_of() {		# IMAGE SECTOR > 512 bytes
	dd if="$1" bs=512 skip="$2" count=1 status=none
}
put_sector() {		# IMAGE SECTOR < 512 bytes
	dd of="$1" bs=512 seek="$2" count=1 conv=notrunc status=none
}

mkdir -p "$WORK/img"
head -c $((SECTORS * 512)) /dev/urandom >"$WORK/template.img"
: >"$WORK/cases.list"
names=()
while IFS='|' read -r name opts cmdline writes maybe; do
	[ -n "$name" ] || continue
	names+=("$name")
	cp "$WORK/template.img" "$WORK/img/$name.img"
	printf '%s|%s|%s\n' "$name" "$opts" "$cmdline" >>"$WORK/cases.list"
done <<<"$CASES"

start=$(date +%s)
RUN_TIMEOUT=${RUN_TIMEOUT:-540} run_on_kvm "$top_srcdir/tests/guest/cases.sh" \
	"$TINYVMM" "$GUEST" "$WORK"
rc=$?
echo "guest tests: ${#names[@]} cases ran in $(($(date +%s) - start)) s (runner $RUNNER, status $rc)"
if [ "$rc" -eq 125 ]; then
	echo "ERROR $TEST_NAME: the nested KVM harness failed; no result"
	exit 99
fi

# check_image NAME WRITES MAYBE: the image is the template plus WRITES, and
# each sector of MAYBE is either untouched or fully written.
check_image() {
	local img=$WORK/img/$1.img exp=$WORK/expected.img w s n seed k
	cp "$WORK/template.img" "$exp"
	for w in $2; do
		IFS=: read -r s n seed <<<"$w"
		for ((k = 0; k < n; k++)); do
			pattern_sector "$(seed_of "$seed")" "$k" | put_sector "$exp" $((s + k))
		done
	done
	for w in $3; do
		IFS=: read -r s n seed <<<"$w"
		for ((k = 0; k < n; k++)); do
			pattern_sector "$(seed_of "$seed")" "$k" >"$WORK/p"
			if cmp -s "$WORK/p" <(sector_of "$img" $((s + k))); then
				put_sector "$exp" $((s + k)) <"$WORK/p"
			fi
		done
	done
	if ! cmp -s "$exp" "$img"; then
		REASON="image differs from the expected one: $(cmp "$exp" "$img" 2>&1 | head -1) (byte offsets from 1; sector = (offset-1)/512)"
		return 1
	fi
}

npass=0 nfail=0
while IFS='|' read -r name opts cmdline writes maybe; do
	[ -n "$name" ] || continue
	out=$WORK/out/$name
	st=$(cat "$out.status" 2>/dev/null || echo none)
	REASON=
	want=$GUEST_PASS
	# Stopped by SIGTERM in the middle of its I/O: 128 + 15, after a clean
	# stop (tinyvmm's own line) and a successful final flush (else 1).
	case $name in
	sigterm_*)
		want=143
		if [ "$st" = 143 ] && ! grep -q 'VM stopped: signal Terminated (exit status 143)' "$out.log"; then
			REASON="status 143 but no clean-stop line from tinyvmm"
		elif grep -q 'may be missing completed writes' "$out.log"; then
			REASON="the final flush failed"
		fi ;;
	esac
	if [ -n "$REASON" ]; then
		:
	elif [ "$st" != "$want" ]; then
		case $st in
		none) REASON="no exit status recorded (the runner did not get to it)" ;;
		124) REASON="timed out" ;;
		97) REASON="guest check failed (0x61)" ;;
		98) REASON="guest took an exception (0x62)" ;;
		*) REASON="exit status $st, expected $want" ;;
		esac
	elif grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$out.log"; then
		REASON="sanitizer report in tinyvmm's output"
	else
		check_image "$name" "$writes" "$maybe"
	fi
	if [ -z "$REASON" ]; then
		say "PASS $name ($(cat "$out.time" 2>/dev/null) s)"
		npass=$((npass + 1))
	else
		say "FAIL $name: $REASON"
		[ ! -s "$out.log" ] || sed 's/^/    | /' "$out.log" | tail -n 15
		nfail=$((nfail + 1))
	fi
done <<<"$CASES"
say "guest tests: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
