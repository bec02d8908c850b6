#!/bin/sh
# The guest side of the workload tests: /run.sh of the test image
# (images/make-guest-image.sh --run tests/workload/guest.sh), run by busybox sh
# inside a Linux guest. What to do comes from the kernel command line:
#   wl=verify        fio writes and verifies every data disk (vdb, vdc, ...)
#   wl=ext4-write    mkfs.ext4 on vdb, copy a tree in, record its checksums, umount
#   wl=ext4-check    mount vdb read-only and check the recorded checksums
#   wl=crash-dsync   numbered records to vdb with O_DIRECT|O_DSYNC, "ack N" after each
#   wl=crash-fsync   the same with buffered writes and fsync
#   wl=ext4-stress   mount vdb (ext4) and write, fsync and delete files until killed
#   wl=bench         the guest-side benchmark (bench/guest.sh) on vdb, rt=SECONDS each
#   wl=discard       blkdiscard / blkdiscard -z on vdb and vdd (a range= window),
#                    mkfs.ext4 + a file removed + fstrim on vdc; zeros read back
#   seed=N           the crash records' seed
# The host runs the same file to get the exact fio job and record contents:
#   sh guest.sh print-verify-job FILE BASE_OFFSET [host]  (BASE_OFFSET in bytes;
#                                                    host: for fio --verify_only)
#   sh guest.sh print-record SEED N                 (4096 bytes, record N)
# Exit status: 0 when the guest-side checks passed.

# The fio job of wl=verify: 40 MiB from BASE, every byte written once and verified
# (fio's verify headers carry the offset, so data in the wrong place fails too).
verify_job() {	# verify_job FILE BASE [host]
	b=$2
	# fio --verify_only checks nothing in a job with verify_backlog: the host's copy
	# leaves it out (it does not change which blocks are written, or with what).
	if [ "${3:-}" = host ]; then
		verify_job "$1" "$2" | grep -v '^verify_backlog='
		return
	fi
	cat <<EOF
[global]
filename=$1
randrepeat=1
verify_fatal=1
do_verify=1
exitall_on_error=1
verify_state_save=0
stonewall

[psync-qd1-rand-4k-direct]
ioengine=psync
rw=randwrite
bs=4k
direct=1
offset=$((b + 0))
size=4m
verify=crc32c
verify_backlog=128

[psync-qd1-seq-4k-1m-buffered]
ioengine=psync
rw=write
bsrange=4k-1m
direct=0
offset=$((b + 4 * 1048576))
size=8m
verify=md5
verify_backlog=8

[libaio-qd32-rand-4k-1m-direct]
ioengine=libaio
iodepth=32
rw=randwrite
bssplit=4k/60:64k/30:1m/10
direct=1
offset=$((b + 12 * 1048576))
size=16m
verify=crc32c
verify_backlog=64

[io_uring-qd32-seq-1m-direct]
ioengine=io_uring
iodepth=32
rw=write
bs=1m
direct=1
offset=$((b + 28 * 1048576))
size=8m
verify=sha256
verify_backlog=4

[io_uring-qd32-rand-4k-buffered]
ioengine=io_uring
iodepth=32
rw=randwrite
bs=4k
direct=0
offset=$((b + 36 * 1048576))
size=4m
verify=xxhash
verify_backlog=256
EOF
}

# Record N of the crash test: 64 identical 64-byte lines naming the seed and N.
record() {	# record SEED N
	line=$(printf 'tinyvmm-crash-record seed=%010d n=%08d ...............' "$1" "$2")
	# shellcheck disable=SC2046  # 64 arguments: the format is used once per argument
	printf "$line\n%.0s" $(seq 64)
}

cmdline_arg() {	# the value of KEY= on the kernel command line
	for w in $(cat /proc/cmdline); do
		case $w in "$1"=*) echo "${w#*=}"; return 0 ;; esac
	done
	return 1
}

data_disks() {
	for d in /sys/block/vd*; do
		d=${d##*/}
		[ "$d" = vda ] || echo "$d"
	done
}

wl_verify() {
	rc=0
	for d in $(data_disks); do
		echo "verify: /dev/$d, $(($(cat "/sys/block/$d/size") / 2048)) MiB," \
			"logical block $(cat "/sys/block/$d/queue/logical_block_size")"
		verify_job "/dev/$d" 0 > "/tmp/$d.fio"
		if fio --output-format=terse --terse-version=3 "/tmp/$d.fio" > "/tmp/$d.out" 2>&1; then
			# terse v3: field 3 job name, 5 error; print one line per job
			awk -F';' '/^3;/ { printf "verify: %s ok (err=%s)\n", $3, $5 }' "/tmp/$d.out"
			echo "verify: /dev/$d PASS"
		else
			cat "/tmp/$d.out"
			echo "verify: /dev/$d FAIL"
			rc=1
		fi
	done
	[ -n "$(data_disks)" ] || { echo "verify: no data disk"; rc=1; }
	# How the completions came: MSI-X vectors, or the IOAPIC (pci=nomsi).
	grep virtio /proc/interrupts | sed 's/^ */verify: irq: /'
	dmesg | grep -o 'virtio_blk virtio[0-9]*: [0-9/]* default/read/poll queues' |
		sed 's/^/verify: /'
	mq_jobs vdb || rc=1
	return $rc
}

# Interrupts so far on each of a virtio device's queue vectors: "N COUNT" lines.
queue_irqs() {	# queue_irqs virtioN
	awk -v dev="$1" '$NF ~ "^" dev "-req\\." {
		n = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i; else break
		q = $NF; sub(".*-req\\.", "", q); print q, n }' /proc/interrupts
}

# Two fio jobs pinned to vCPUs 0 and 1 on DISK: with a queue per vCPU, each
# submits on its own queue, whose vector must then fire.  With a poll queue
# (virtio_blk.poll_queues=), the second job polls (io_uring --hipri): its
# requests go to the poll queue instead.
mq_jobs() {	# mq_jobs DISK
	nq=$(ls -d "/sys/block/$1/mq/"* 2>/dev/null | wc -l)
	dev=$(basename "$(readlink -f "/sys/block/$1/device")")
	pollq=$(dmesg | sed -n "s/.*virtio_blk $dev: [0-9]*\/[0-9]*\/\([0-9]*\) default.*/\1/p")
	echo "verify: mq: /dev/$1 ($dev) has $nq queue(s), $(nproc) vCPU(s), ${pollq:-0} poll queue(s)"
	[ "$nq" -ge 2 ] && [ "$(nproc)" -ge 2 ] || return 0
	hipri=
	[ "${pollq:-0}" -eq 0 ] || hipri="--ioengine=io_uring --hipri"
	queue_irqs "$dev" > /tmp/irq.before
	# shellcheck disable=SC2086  # $hipri: two options or none
	fio --filename="/dev/$1" --rw=randread --bs=4k --direct=1 --ioengine=libaio \
		--iodepth=8 --size=32m --io_size=8m --output-format=terse --terse-version=3 \
		--name=cpu0 --cpus_allowed=0 --name=cpu1 --cpus_allowed=1 $hipri > /tmp/mq.out 2>&1 ||
		{ cat /tmp/mq.out; echo "verify: mq: fio failed"; return 1; }
	awk -F';' '/^3;/ { printf "verify: mq: job %s read %s KiB err=%s\n", $3, $6, $5 }' /tmp/mq.out
	queue_irqs "$dev" | awk 'FNR == NR { b[$1] = $2; next }
		{ printf "verify: mq: %s-req.%s interrupts +%d\n", dev, $1, $2 - b[$1] }' \
		dev="$dev" /tmp/irq.before -
}

wl_ext4_write() {
	mkfs.ext4 -q -F -L wltest /dev/vdb || return 1
	mount -t ext4 /dev/vdb /mnt || return 1
	mkdir -p /mnt/tree
	cp -a /usr/sbin /etc /mnt/tree/ || return 1
	cp -a /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/bin/fio /mnt/tree/ || return 1
	head -c 6000000 /dev/urandom > /mnt/tree/random-6M || return 1
	i=0
	while [ $i -lt 200 ]; do
		head -c $((i * 37 + 1)) /dev/urandom > "/mnt/tree/small-$i"
		i=$((i + 1))
	done
	ln -s small-1 /mnt/tree/link-to-small-1
	(cd /mnt && find tree -type f | sort | xargs sha256sum > /mnt/SHA256SUMS) || return 1
	echo "ext4-write: $(wc -l < /mnt/SHA256SUMS) files, $(du -sk /mnt/tree | cut -f1) KiB"
	sed 's/^/ext4-sum: /' /mnt/SHA256SUMS
	sync
	umount /mnt || return 1
	echo "ext4-write: done"
}

wl_ext4_check() {
	mount -t ext4 -o ro /dev/vdb /mnt || return 1
	(cd /mnt && sha256sum -c -s SHA256SUMS) || { echo "ext4-check: checksum mismatch"; return 1; }
	echo "ext4-check: $(wc -l < /mnt/SHA256SUMS) files match"
	umount /mnt
}

wl_crash() {	# wl_crash dsync|fsync
	seed=$(cmdline_arg seed) || { echo "crash: no seed= on the cmdline"; return 1; }
	n=0
	while [ $n -lt 100000 ]; do
		record "$seed" $n > /tmp/rec
		if [ "$1" = dsync ]; then
			dd if=/tmp/rec of=/dev/vdb bs=4096 seek=$n count=1 \
				oflag=direct,dsync conv=notrunc status=none || break
		elif [ "$1" = xq ]; then
			# Written on vCPU 0's queue, flushed on vCPU 1's.
			taskset -c 0 dd if=/tmp/rec of=/dev/vdb bs=4096 seek=$n count=1 \
				oflag=direct conv=notrunc status=none || break
			taskset -c 1 sync /dev/vdb || break
		else
			dd if=/tmp/rec of=/dev/vdb bs=4096 seek=$n count=1 \
				conv=notrunc,fsync status=none || break
		fi
		echo "ack $n"
		n=$((n + 1))
	done
	echo "crash: write of record $n failed"
	return 1
}

wl_ext4_stress() {
	mount -t ext4 /dev/vdb /mnt || return 1
	# Each boot counts from c0 again: start from an empty churn directory.
	rm -rf /mnt/churn
	mkdir -p /mnt/fio /mnt/churn
	sync -f /mnt
	fio --name=stress --directory=/mnt/fio --nrfiles=8 --filesize=256k-2m \
		--rw=randwrite --bs=4k-64k --fsync=4 --time_based --runtime=3600 \
		--ioengine=psync > /tmp/fio.out 2>&1 &
	i=0
	while :; do
		cp -a /usr/sbin "/mnt/churn/c$i" && sync -f /mnt
		rm -rf "/mnt/churn/c$((i - 2))"
		echo "progress $i"
		i=$((i + 1))
	done
}

# One fio run per test; "bench: start/end NAME" lines let the host take tinyvmm's
# --stats counters around it (SIGUSR2), "bench-result" carries fio's numbers.
bench_one() {	# bench_one NAME FIO-ARGS...
	name=$1
	shift
	echo "bench: start $name"
	fio --name="$name" --filename=/dev/vdb --time_based --runtime="$rt" --ramp_time=1 \
		--output-format=terse --terse-version=3 "$@" > /tmp/bench.out 2>&1
	st=$?
	echo "bench: end $name"
	sleep 1	# the host takes tinyvmm's counters on that line
	# terse v3: 8 read IOPS, 7 read KiB/s, 49 write IOPS, 48 write KiB/s
	awk -F';' -v n="$name" -v st=$st '/^3;/ {
		printf "bench-result %s iops=%d kibs=%d status=%d\n", n, $8 + $49, $7 + $48, st }' \
		/tmp/bench.out
	[ $st -eq 0 ] || cat /tmp/bench.out
}

wl_bench() {
	rt=$(cmdline_arg rt) || rt=5
	bench_one rand-read-4k-qd1 --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=1
	bench_one rand-read-4k-qd32 --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=32
	bench_one seq-read-128k --ioengine=libaio --direct=1 --rw=read --bs=128k --iodepth=8
	bench_one rand-write-4k-fsync --ioengine=psync --direct=0 --rw=randwrite --bs=4k --fsync=1
}

# Booted with three vCPUs, three queues and virtio_blk.poll_queues=1: two jobs
# on two vCPUs (two default queues), then the same QD1 read through io_uring,
# interrupt-driven and then polled (--hipri: IOPOLL on the poll queue).
wl_bench_poll() {
	rt=$(cmdline_arg rt) || rt=5
	dmesg | grep -o 'virtio_blk virtio1: [0-9/]* default/read/poll queues' | sed 's/^/bench: /'
	pq=$(dmesg | sed -n 's/.*virtio_blk virtio1: [0-9]*\/[0-9]*\/\([0-9]*\) default.*/\1/p')
	if [ "${pq:-0}" -eq 0 ] || [ "$(nproc)" -lt 3 ]; then
		echo "bench: no poll queue on virtio1 or fewer than 3 vCPUs ($(nproc) online): no results from this boot"
		return 0
	fi
	bench_one rand-read-4k-qd8-2jobs --ioengine=libaio --direct=1 --rw=randread --bs=4k \
		--iodepth=8 --numjobs=2 --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting
	bench_one rand-read-4k-qd1-uring --ioengine=io_uring --direct=1 --rw=randread --bs=4k --iodepth=1
	bench_one rand-read-4k-qd1-hipri --ioengine=io_uring --hipri --direct=1 --rw=randread --bs=4k \
		--iodepth=1
}

# Whether LEN MiB of DEV from MiB OFF read back as zeros.
zeros_at() {	# zeros_at DEV OFF LEN
	[ "$(dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none | sha256sum)" = \
	  "$(head -c $(($3 * 1048576)) /dev/zero | sha256sum)" ]
}

# A fresh ext4 on DEV, a file of MIB written, synced, deleted, and the free space trimmed.
trim_fs() {	# trim_fs DEV MIB
	local out
	mkfs.ext4 -q -F -E nodiscard "/dev/$1" && mount -t ext4 "/dev/$1" /mnt ||
		{ echo "discard: mkfs/mount $1 failed"; return 1; }
	if ! { head -c $(($2 << 20)) /dev/urandom > /mnt/big && sync -f /mnt && rm /mnt/big &&
	       sync -f /mnt; }; then
		echo "discard: $1: writing, syncing or deleting the file failed"
		umount /mnt
		return 1
	fi
	echo "discard: $1 wrote and deleted $2 MiB"
	if out=$(fstrim -v /mnt); then
		echo "discard: fstrim $1: $out"
	else
		echo "discard: fstrim $1 failed"
		umount /mnt
		return 1
	fi
	umount /mnt
}

wl_discard() {
	rc=0
	for d in vdb vdc vdd; do
		echo "discard: /dev/$d max_discard=$(cat /sys/block/$d/queue/discard_max_bytes)" \
			"granularity=$(cat /sys/block/$d/queue/discard_granularity)" \
			"write_zeroes_max=$(cat /sys/block/$d/queue/write_zeroes_max_bytes)"
	done
	# vdb: DISCARD of 16 MiB at 8 MiB, WRITE_ZEROES (-z) of 8 MiB at 32 MiB.
	blkdiscard -o $((8 << 20)) -l $((16 << 20)) /dev/vdb || { echo "discard: blkdiscard vdb failed"; rc=1; }
	blkdiscard -z -o $((32 << 20)) -l $((8 << 20)) /dev/vdb || { echo "discard: blkdiscard -z vdb failed"; rc=1; }
	zeros_at /dev/vdb 8 16 && echo "discard: vdb discarded range reads zeros" || rc=1
	zeros_at /dev/vdb 32 8 && echo "discard: vdb zeroed range reads zeros" || rc=1
	# vdc: a file system whose deleted file goes back to the host through fstrim.
	trim_fs vdc 32 || rc=1
	# vdd, a range= window: WRITE_ZEROES, a file system trimmed, then the whole window discarded.
	blkdiscard -z -l $((8 << 20)) /dev/vdd || { echo "discard: blkdiscard -z vdd failed"; rc=1; }
	zeros_at /dev/vdd 0 8 && echo "discard: vdd zeroed range reads zeros" || rc=1
	trim_fs vdd 16 || rc=1
	# -f: blkdiscard may refuse a device holding a file system signature without it.
	blkdiscard -f /dev/vdd || { echo "discard: blkdiscard vdd failed"; rc=1; }
	zeros_at /dev/vdd 0 $(($(cat /sys/block/vdd/size) / 2048)) && echo "discard: vdd window reads zeros" || rc=1
	sync
	[ $rc -eq 0 ] && echo "discard: PASS"
	return $rc
}

case ${1:-} in
print-verify-job) verify_job "$2" "$3" "${4:-}"; exit 0 ;;
print-record) record "$2" "$3"; exit 0 ;;
esac

wl=$(cmdline_arg wl) || { echo "guest.sh: no wl= on the kernel command line"; exit 2; }
echo "guest.sh: wl=$wl"
case $wl in
verify) wl_verify ;;
ext4-write) wl_ext4_write ;;
ext4-check) wl_ext4_check ;;
crash-dsync) wl_crash dsync ;;
crash-fsync) wl_crash fsync ;;
crash-xq) wl_crash xq ;;
ext4-stress) wl_ext4_stress ;;
bench) wl_bench ;;
bench-poll) wl_bench_poll ;;
discard) wl_discard ;;
*) echo "guest.sh: unknown wl=$wl"; exit 2 ;;
esac
