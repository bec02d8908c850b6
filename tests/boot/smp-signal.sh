#!/usr/bin/env bash
# -c 2: the guest brings up both vCPUs from the MP table.  SIGTERM to a
# running guest with a disk: tinyvmm stops the VM cleanly (its own "VM
# stopped" line, disk flushed) and exits 128+15; a SIGUSR2 before it prints
# the --stats counters and stops nothing.  All in one KVM run.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

need_kernel vmlinux
need_kvm

truncate -s 16M "$WORK/disk.img"
cat >"$WORK/cases.sh" <<CASES
cd "$WORK"
"$TINYVMM" -c 2 --cmdline "console=ttyS0 panic=-1 loglevel=7" "$KDIR/vmlinux" \
	</dev/null >smp.console 2>smp.stderr
echo \$? >smp.status
# No panic=-1: after the root-mount panic the guest waits forever, so the
# signal always finds it running, on fast and slow hosts alike.
# With a disk: its threads must not take the signal (default action: death).
# SIGUSR2 first: with --stats it prints the counters so far and the VM runs on.
"$TINYVMM" --stats --cmdline "console=ttyS0 loglevel=7" \
	-s 9,virtio-blk,"$WORK/disk.img",writeback "$KDIR/vmlinux" </dev/null >sig.console 2>sig.stderr &
pid=\$!
sleep 3
kill -USR2 \$pid
sleep 2
kill -TERM \$pid
wait \$pid
echo \$? >sig.status
CASES
st=0
run_on_kvm bash "$WORK/cases.sh" || st=$?
[ "$st" -ne 125 ] || { fail "the nested-KVM harness failed"; finish; }

echo "--- -c 2: status $(cat "$WORK/smp.status" 2>/dev/null)"
grep -E 'smp:|Kernel panic' "$WORK/smp.console"
cat "$WORK/smp.stderr"
[ "$(cat "$WORK/smp.status" 2>/dev/null)" = 0 ] || fail "-c 2 boot did not end with status 0"
assert_contains "$WORK/smp.console" 'smp: Brought up 1 node, 2 CPUs' "both vCPUs up"
assert_contains "$WORK/smp.console" 'Kernel panic - not syncing: VFS: Unable to mount root fs' \
	"-c 2 boot reached the root-mount panic"

echo "--- SIGTERM: status $(cat "$WORK/sig.status" 2>/dev/null)"
tail -n 3 "$WORK/sig.console"
cat "$WORK/sig.stderr"
[ "$(cat "$WORK/sig.status" 2>/dev/null)" = 143 ] || fail "SIGTERM: exit status is not 143"
assert_contains "$WORK/sig.console" 'Linux version 6\.1\.' "the guest was running when the signal came"
assert_contains "$WORK/sig.stderr" 'VM stopped: signal Terminated \(exit status 143\)' \
	"clean stop on SIGTERM"
# The snapshot came before the stop, and the VM ran on after it.
if ! awk '/stats: snapshot \(SIGUSR2\)/ { s = NR } /stats: exits to user space:/ && s && NR > s { e++ }
	/VM stopped: signal Terminated/ { t = NR } END { exit !(s && e >= 2 && t > s) }' "$WORK/sig.stderr"; then
	fail "SIGUSR2 with --stats: no snapshot before the SIGTERM stop (or it stopped the VM)"
fi
finish
