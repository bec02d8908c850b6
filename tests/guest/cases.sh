#!/usr/bin/env bash
# Run on the KVM side by tests/guest/run.sh (through run_on_kvm, so possibly
# inside the nested L1 guest): boot the test guest once per case.
#
# Usage: cases.sh TINYVMM GUEST_ELF WORK
# WORK/cases.list has one case a line: NAME|DISK_OPTIONS|CMDLINE.
# For each: WORK/img/NAME.img is the disk; WORK/out/NAME.log gets tinyvmm's
# output (guest console and stderr), WORK/out/NAME.status its exit status
# (124 when it ran past CASE_TIMEOUT seconds, default 60).
. "$(dirname "$0")/../punch.sh"
set -u
tinyvmm=$1 guest=$2 work=$3
limit=${CASE_TIMEOUT:-60}
mkdir -p "$work/out"

# tinyvmm offers DISCARD/WRITE_ZEROES only on media that punch holes (9p,
# the nested runner's work directory, does not): the dwz_* cases run on a
# copy in the first directory that does, copied back for the host's check.
punch_dir=$(first_punch_dir "$work/img" "${TMPDIR:-/tmp}" /dev/shm)
while IFS='|' read -r name opts cmdline; do
	[ -n "$name" ] || continue
	start=$(date +%s.%N)
	# sigterm_* cases never end by themselves: SIGTERM comes after 4 s.
	case $name in
	sigterm_*) t=(timeout --preserve-status -k 5 -s TERM 4) ;;
	*) t=(timeout -k 5 "$limit") ;;
	esac
	img=$work/img/$name.img
	case $name in
	dwz_*)
		if [ -z "$punch_dir" ]; then
			echo "no directory here punches holes: $name cannot run" >"$work/out/$name.log"
			echo none >"$work/out/$name.status"
			continue
		fi
		[ "$punch_dir" = "$work/img" ] || { img=$punch_dir/$name.$$.img; cp "$work/img/$name.img" "$img"; } ;;
	esac
	"${t[@]}" "$tinyvmm" -m 64M -s "3,virtio-blk,$img$opts" \
		--cmdline "case=$name $cmdline" "$guest" </dev/null >"$work/out/$name.log" 2>&1
	echo $? >"$work/out/$name.status"
	if [ "$img" != "$work/img/$name.img" ]; then
		cp "$img" "$work/img/$name.img" && rm -f "$img"
	fi
	awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }' \
		>"$work/out/$name.time"
done <"$work/cases.list"
exit 0
