# shellcheck shell=bash
# Sourced on the KVM side (tests/guest/cases.sh, tests/workload/discard-run.sh).
# first_punch_dir DIR...: print the first DIR in which a file can have a hole
# punched; status 1 when none can.  tinyvmm offers DISCARD/WRITE_ZEROES only on
# such media, and 9p (the nested runner's shared directory) is not one.
first_punch_dir() {
	local d probe
	for d in "$@"; do
		probe=$d/.punch-probe.$$
		if : >"$probe" 2>/dev/null && fallocate -p -o 0 -l 4096 "$probe" 2>/dev/null; then
			rm -f "$probe"
			echo "$d"
			return 0
		fi
		rm -f "$probe"
	done
	return 1
}
