#!/usr/bin/env bash
# fio inside a Linux guest writes and verifies four data disks: writethru, writeback,
# sectorsize=4096, and a range= window (tests/workload/guest.sh wl=verify: random and
# sequential, 4 KiB to 1 MiB, psync QD1, libaio and io_uring QD32, O_DIRECT and
# buffered, verify= checksums with verify_backlog). Then the host checks the image
# files itself: fio --verify_only on each (on the window's bytes for range=), and
# the bytes around the window unchanged.  The guest's /proc/interrupts must show
# MSI-X for every disk, and tinyvmm's --stats no INTx at all for the data disks;
# with VERIFY_NOMSI=1 (verify-nomsi.sh) the guest boots pci=nomsi and it is the
# other way round.  Two vCPUs and two queues per disk (MQ): two fio jobs pinned
# to the two vCPUs must use both of vdb's queues; with pci=nomsi the second
# queue is a poll queue, polled by the second job, and never interrupted.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"

MiB=1048576
WIN_LBA=16384		# the window starts 8 MiB into its file ...
WIN_SECTORS=81920	# ... and is 40 MiB long: the same size as the other disks
for d in vdb vdc vdd; do
	truncate -s 40M "$WORK/$d.img"
done
rand_file "$WORK/vde.img" 56
head_sum=$(head -c $((WIN_LBA * 512)) "$WORK/vde.img" | sha256sum)
tail_sum=$(tail -c +$(((WIN_LBA + WIN_SECTORS) * 512 + 1)) "$WORK/vde.img" | sha256sum)

# Two vCPUs, so every disk has two queues (mq= defaults to one per vCPU); vdb
# says so explicitly.
wl_boot verify "wl=verify${VERIFY_NOMSI:+ pci=nomsi virtio_blk.poll_queues=1}" -c 2 \
	-s 3,virtio-blk,"$WORK/vdb.img",writethru,mq=2 \
	-s 4,virtio-blk,"$WORK/vdc.img",writeback \
	-s 5,virtio-blk,"$WORK/vdd.img",sectorsize=4096 \
	-s 6,virtio-blk,"$WORK/vde.img",range=$WIN_LBA/$WIN_SECTORS

[ "$WL_STATUS" -eq 0 ] || fail "tinyvmm exit status $WL_STATUS: the guest's fio verify failed (status 0 expected)"
for d in vdb vdc vdd vde; do
	assert_contains "$WORK/verify.console" "^verify: /dev/$d PASS" "guest fio verified /dev/$d"
done
assert_contains "$WORK/verify.console" "^verify: /dev/vdd, 40 MiB, logical block 4096" \
	"vdd has 4096-byte logical blocks"
assert_contains "$WORK/verify.console" "^verify: /dev/vde, 40 MiB," "the range= window is 40 MiB"

# Interrupts: Linux names a legacy virtio-blk's vectors virtioN-config and
# virtioN-req.Q (MSI-X), or the whole device virtioN (INTx, one line for all).
for n in 0 1 2 3 4; do
	if [ -z "${VERIFY_NOMSI:-}" ]; then
		for q in 0 1; do
			assert_contains "$WORK/verify.console" "^verify: irq: .*PCI-MSI.* virtio$n-req\\.$q[[:space:]]*\$" \
				"virtio$n queue $q completes through its MSI-X vector"
		done
	else
		assert_contains "$WORK/verify.console" "^verify: irq: .*IO-APIC.* virtio$n[[:space:]]*\$" \
			"virtio$n completes through INTx (pci=nomsi)"
	fi
done
# Multiple queues: Linux took two on every disk, and fio's two jobs pinned to
# the two vCPUs made requests on both of vdb's (the guest's count of each
# queue's vector, and tinyvmm's of requests per queue).  Booted pci=nomsi, the
# second queue is a poll queue (virtio_blk.poll_queues=1), which the second
# job (io_uring --hipri) polls: the device must not interrupt for it.
if [ -z "${VERIFY_NOMSI:-}" ]; then qs=2/0/0 pq=0; else qs=1/0/1 pq=1; fi
for n in 0 1 2 3 4; do
	assert_contains "$WORK/verify.console" "^verify: virtio_blk virtio$n: $qs default/read/poll queues" \
		"virtio$n has two queues ($qs default/read/poll)"
done
assert_contains "$WORK/verify.console" "^verify: mq: /dev/vdb \\(virtio1\\) has 2 queue\\(s\\), 2 vCPU\\(s\\), $pq poll queue\\(s\\)" \
	"vdb: two queues, two vCPUs, $pq poll queue(s)"
for j in cpu0 cpu1; do
	assert_contains "$WORK/verify.console" "^verify: mq: job $j read 8192 KiB err=0" "fio job $j on vdb"
done
if [ -z "${VERIFY_NOMSI:-}" ]; then
	for q in 0 1; do
		assert_contains "$WORK/verify.console" "^verify: mq: virtio1-req\\.$q interrupts \\+[1-9]" \
			"vdb's queue $q interrupted during the pinned fio jobs"
	done
fi
qreq=$(sed -n 's/.*stats: virtio-blk slot 3: .* queue-requests=\([0-9,]*\) .*/\1/p' "$WORK/verify.stderr")
qirq=$(sed -n 's/.*stats: virtio-blk slot 3: .* queue-interrupts=\([0-9,]*\) .*/\1/p' "$WORK/verify.stderr")
echo "slot 3: requests per queue $qreq, interrupts per queue $qirq"
[[ $qreq =~ ^[1-9][0-9]*,[1-9][0-9]*$ ]] || fail "slot 3: expected requests on both queues, got '$qreq'"
if [ -n "${VERIFY_NOMSI:-}" ]; then
	# EVENT_IDX: the poll queue's used_event never moves; at most the first
	# decision after set-up interrupts.
	[[ $qirq =~ ^[1-9][0-9]*,[01]$ ]] ||
		fail "slot 3: the poll queue (queue 1) was interrupted: interrupts per queue '$qirq'"
fi

for slot in 3 4 5 6; do
	line=$(grep "stats: virtio-blk slot $slot:" "$WORK/verify.stderr")
	asserts=$(sed -n 's/.* irq-asserts=\([0-9]*\).*/\1/p' <<<"$line")
	msgs=$(sed -n 's/.* msix-messages=\([0-9]*\).*/\1/p' <<<"$line")
	echo "slot $slot: INTx asserts $asserts, MSI-X messages $msgs"
	if [ -z "${VERIFY_NOMSI:-}" ]; then
		[ "${asserts:-x}" = 0 ] && [ "${msgs:-0}" -gt 1000 ] ||
			fail "slot $slot: expected MSI-X only (INTx asserts $asserts, messages $msgs)"
	else
		[ "${msgs:-x}" = 0 ] && [ "${asserts:-0}" -gt 1000 ] ||
			fail "slot $slot: expected INTx only (INTx asserts $asserts, messages $msgs)"
	fi
done

# host_verify IMAGE BASE: fio --verify_only over the job's blocks in IMAGE.
# (BASE is the job's offset in IMAGE: 0 for every disk here.)
host_verify() {
	local img=$1 base=$2 out
	sh "$GUEST_SH" print-verify-job "$img" "$base" host >"$WORK/host.fio"
	out=$WORK/$(basename "$img").verify
	if ! fio --verify_only --verify_state_save=0 --ioengine=psync --iodepth=1 --direct=0 \
		--output-format=terse --terse-version=3 "$WORK/host.fio" >"$out" 2>&1; then
		grep -E 'verify failed|bad|err' "$out" | head -5
		fail "host fio --verify_only on $(basename "$img") (base $base) failed"
		return
	fi
	# Every job must have read back all its bytes (terse v3: field 6 = KiB read),
	# its size= in the job file (in MiB there).
	awk -F';' 'FNR == NR { if ($0 ~ /^\[.*\]$/) job = substr($0, 2, length($0) - 2)
			if ($0 ~ /^size=[0-9]+m$/) sizes[job] = substr($0, 6) * 1024
			next }
		/^3;/ { n++; if ($5 != 0) bad = bad " " $3 " err " $5
			if (!($3 in sizes) || $6 != sizes[$3]) bad = bad " " $3 " read " $6 " KiB" }
		END { if (n != 5) bad = bad " " n " jobs"; if (bad != "") { print bad; exit 1 } }' \
		"$WORK/host.fio" "$out" ||
		fail "host fio --verify_only on $(basename "$img"): $(awk -F';' '/^3;/ {print $3"="$5"/"$6}' "$out" | tr '\n' ' ')"
	echo "host: fio --verify_only $(basename "$img") at offset $base: 40 MiB verified"
}
if [ "$WL_STATUS" -eq 0 ]; then
	host_verify "$WORK/vdb.img" 0
	host_verify "$WORK/vdc.img" 0
	host_verify "$WORK/vdd.img" 0
	# The guest's offsets are the window's: check a copy of the window alone, so a
	# window off by one sector fails the offsets in fio's headers.
	dd if="$WORK/vde.img" of="$WORK/vde-window.img" bs=512 skip=$WIN_LBA count=$WIN_SECTORS status=none
	host_verify "$WORK/vde-window.img" 0
fi
[ "$(head -c $((WIN_LBA * 512)) "$WORK/vde.img" | sha256sum)" = "$head_sum" ] ||
	fail "range=: bytes before the window changed"
[ "$(tail -c +$(((WIN_LBA + WIN_SECTORS) * 512 + 1)) "$WORK/vde.img" | sha256sum)" = "$tail_sum" ] ||
	fail "range=: bytes after the window changed"
[ "$(stat -c %s "$WORK/vde.img")" -eq $((56 * MiB)) ] || fail "range=: the file's size changed"
finish
