#!/usr/bin/env bash
# Run a command on nested KVM: inside an L1 Linux guest that QEMU emulates with TCG
# and an AMD SVM CPU, where kvm-amd gives it a /dev/kvm.  For hosts (and CI) without
# /dev/kvm.  The L1 kit comes from tests/nested/build-l1.sh.
#
# Usage: tests/nested/run.sh [--timeout SECS] [--retries N] [--disk FILE] WORKDIR -- COMMAND [ARGS...]
#
# The L1 guest sees the host's whole file system read-only (9p) and WORKDIR read-write
# at the same path; /tmp there is the host's /tmp with a tmpfs on top (writes do not
# reach the host).  So the current directory and every path COMMAND reads must exist on
# the host, and everything it writes for the host to see must be under WORKDIR.
# COMMAND runs as root in the current directory with stdin from /dev/null, with PATH,
# HOME, TINYVMM_* (not TINYVMM_KVM_DEVICE), ASAN_/UBSAN_/LSAN_OPTIONS, LANG and LC_*
# from here and TMPDIR=/tmp; its stdout and stderr are collected in WORKDIR/.nested/
# and copied to ours when L1 has powered off.
#
# Exit status: COMMAND's; 125 when the harness failed (L1 hung, crashed, or has no
# /dev/kvm; a run with no exit status is retried --retries times, default 1, first).
#   --timeout SECS   wall-clock limit for one L1 run, boot included (default 600)
#   --retries N      extra attempts after an L1 run that gave no status (default 1)
#   --disk FILE      FILE (raw) is L1's /dev/vda, a virtio-blk disk whose data is on
#                    FILE once L1 wrote it out of its page cache
# Power cut: a COMMAND that writes its exit status to WORKDIR/.nested/powercut and then
# resets L1 at once (echo b > /proc/sysrq-trigger: no sync, so what L1 had not written
# out of its page cache is lost, as in a power cut) ends the run with that status.
# Files in WORKDIR/.nested/: cmd.sh, stdout, stderr, status, l1-console.log (L1 serial
# console), qemu.log (QEMU's own messages), l1-error (when L1 has no /dev/kvm).
# Environment: TINYVMM_L1_KIT (the kit directory; default: build-l1.sh --print-dir),
# TINYVMM_CACHE (see build-l1.sh), TINYVMM_NESTED_SMP (L1 vCPUs, default 1),
# TINYVMM_NESTED_VERBOSE=1 (print each attempt's wall time to stderr).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage="usage: $0 [--timeout SECS] [--retries N] [--disk FILE] WORKDIR -- COMMAND [ARGS...]"
err() { printf 'nested: %s\n' "$*" >&2; }
die() { err "error: $*"; exit 125; }

timeout_s=600
retries=1
disk=()
while [ $# -gt 0 ]; do
	case $1 in
	--disk) [ $# -ge 2 ] || die "$usage"
		[ -f "$2" ] && [ -w "$2" ] || die "--disk $2 is not a writable file"
		[[ $2 != *,* ]] || die "--disk $2: no commas in the path, please (QEMU's option syntax)"
		disk=(-drive "file=$2,if=none,id=d0,format=raw,cache=unsafe" -device virtio-blk-pci,drive=d0)
		shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "$usage"; timeout_s=$2; shift 2 ;;
	--retries) [ $# -ge 2 ] || die "$usage"; retries=$2; shift 2 ;;
	-h|--help) sed -n '2,30s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	--) die "$usage" ;;
	-*) die "unknown option '$1' ($usage)" ;;
	*) break ;;
	esac
done
[ $# -ge 3 ] && [ "$2" = "--" ] || die "$usage"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a positive number of seconds, not '$timeout_s'"
[[ $retries =~ ^[0-9]+$ ]] || die "--retries wants a number, not '$retries'"
workdir=$1
shift 2

[ -d "$workdir" ] || die "work directory $workdir does not exist"
# The physical path: L1 mounts the work share at the same path inside the host root.
workdir=$(cd "$workdir" && pwd -P)
# It travels on the kernel command line and in QEMU's -virtfs option.
[[ $workdir =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
	die "work directory '$workdir' must be an absolute path of [A-Za-z0-9._/+-] only"
[ "$workdir" != / ] || die "the work directory cannot be /"

command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 is not installed (tests/nested/build-l1.sh installs it)"
kit=${TINYVMM_L1_KIT:-$("$here/build-l1.sh" --print-dir)} || die "cannot locate the L1 kit"
[ -s "$kit/vmlinuz" ] && [ -s "$kit/initrd.cpio.gz" ] ||
	die "no L1 kit in $kit; build it with tests/nested/build-l1.sh"

n=$workdir/.nested
mkdir -p "$n" || die "cannot create $n"

# The script L1 runs, chrooted into the host's root.
{
	printf '# written by tests/nested/run.sh; run by tests/nested/l1-init in L1\n'
	printf '# (printf %%q quoting may need bash: l1-init starts it with /bin/sh)\n'
	printf '[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"\n'
	printf 'exec </dev/null >%q 2>%q\n' "$n/stdout" "$n/stderr"
	printf 'cd %q || exit 126\n' "$PWD"
	printf 'export PATH=%q\n' "$PATH"
	printf 'export HOME=%q\n' "${HOME:-/root}"
	while IFS= read -r v; do
		case $v in
		TINYVMM_KVM_DEVICE) ;;	# L1's is /dev/kvm
		TINYVMM_*|ASAN_OPTIONS|UBSAN_OPTIONS|LSAN_OPTIONS|LANG|LC_*)
			printf 'export %s=%q\n' "$v" "${!v}" ;;
		esac
	done < <(compgen -e)
	printf 'export TMPDIR=/tmp\n'
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$n/cmd.sh" || die "cannot write $n/cmd.sh"

# Fastest boot: the uncompressed kernel through PVH, with qboot instead of SeaBIOS.
kernel=$kit/vmlinuz
[ ! -s "$kit/vmlinux" ] || kernel=$kit/vmlinux
bios=()
[ ! -f /usr/share/qemu/qboot.rom ] || bios=(-bios /usr/share/qemu/qboot.rom)

smp=${TINYVMM_NESTED_SMP:-1}
case $smp in
1) accel=tcg ;;
[2-9]) accel=tcg,thread=multi ;;
*) die "TINYVMM_NESTED_SMP must be 1..9, not '$smp'" ;;
esac

qpid=
trap '[ -z "$qpid" ] || kill "$qpid" 2>/dev/null; exit 125' INT TERM HUP

attempt=0
while :; do
	attempt=$((attempt + 1))
	rm -f "$n/status" "$n/powercut" "$n/stdout" "$n/stderr" "$n/l1-error"
	[ ! -f "$n/l1-console.log" ] || mv -f "$n/l1-console.log" "$n/l1-console.prev.log"
	start=$(date +%s.%N)
	timeout -k 10 "$timeout_s" qemu-system-x86_64 \
		-M q35 -accel "$accel" -cpu max,+svm -m 2G -smp "$smp" "${bios[@]}" \
		-display none -vga none -monitor none -parallel none -no-reboot -net none \
		-serial "file:$n/l1-console.log" "${disk[@]}" \
		-kernel "$kernel" -initrd "$kit/initrd.cpio.gz" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 tinyvmm.workdir=$workdir" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot \
		-virtfs "local,path=$workdir,mount_tag=work,security_model=none,id=work" \
		</dev/null >"$n/qemu.log" 2>&1 &
	qpid=$!
	wait "$qpid"
	qst=$?
	qpid=
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	[ "${TINYVMM_NESTED_VERBOSE:-0}" != 1 ] || err "attempt $attempt: L1 ran ${secs}s, qemu status $qst"

	if [ -s "$n/l1-error" ]; then
		err "L1 has no usable nested KVM:"
		sed 's/^/nested:   /' "$n/l1-error" >&2
		exit 125
	fi
	for f in status powercut; do
		[ -f "$n/$f" ] || continue
		st=$(cat "$n/$f")
		[[ $st =~ ^[0-9]+$ ]] || die "bad status '$st' in $n/$f"
		[ ! -f "$n/stdout" ] || cat "$n/stdout"
		[ ! -f "$n/stderr" ] || cat "$n/stderr" >&2
		exit "$st"
	done
	if [ "$attempt" -le "$retries" ]; then
		err "L1 run failed (timeout/no status), retrying once" \
			"(attempt $attempt: qemu status $qst after ${secs}s; console kept in $n/l1-console.prev.log)"
		continue
	fi
	err "L1 run failed (timeout/no status) $attempt time(s); giving up" \
		"(qemu status $qst after ${secs}s, limit ${timeout_s}s)"
	err "--- last 40 lines of $n/l1-console.log ---"
	tail -n 40 "$n/l1-console.log" >&2 2>/dev/null
	if [ -s "$n/qemu.log" ]; then
		err "--- $n/qemu.log ---"
		tail -n 20 "$n/qemu.log" >&2
	fi
	exit 125
done
