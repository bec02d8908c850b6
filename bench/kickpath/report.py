#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make kick-path: which source files the queue thread's requests pass through.

Reads the events bench/kickpath/hook.c recorded in an instrumented blkbench
(built -O1 -fno-inline, so that every source-level call is a real call and
its call site is in its caller) and prints, per request (calls of
blk_req_parse):
  - the modules entered (x.c and x.h count as one module): those with at
    least one function call in them per twenty requests (an interrupt may
    serve a batch of requests);
  - the calls from one module into another (crossings), and which.
The idle avail-ring polling (virtq_avail_pending and what it calls) is left
out: its count grows with the time the thread waits, not with the work.
"""
import array
import collections
import subprocess
import sys

POLL = {'virtq_avail_pending'}
PARSE = 'blk_req_parse'


def load(exe, events, srcdirs):
    raw = open(events, 'rb').read()
    q = array.array('Q')
    q.frombytes(raw[:len(raw) // 24 * 24])
    rows = list(zip(q[0::3], q[1::3], q[2::3]))
    addrs = sorted(set(q[0::3]) | set(q[1::3]))
    out = subprocess.run(['addr2line', '-f', '-e', exe] + ['%x' % a for a in addrs],
                         capture_output=True, text=True, check=True).stdout.split('\n')
    name, mod = {}, {}
    for i, a in enumerate(addrs):
        name[a] = out[2 * i]
        f = out[2 * i + 1].split(':')[0]
        for d in srcdirs:
            if f.startswith(d):
                f = f[len(d):].lstrip('/')
        while f.startswith('../'):
            f = f[3:]
        mod[a] = f.rsplit('.', 1)[0] if not f.startswith(('/', '?')) else None
    return rows, name, mod


def main():
    exe, events, label = sys.argv[1:4]
    rows, name, mod = load(exe, events, sys.argv[4:])
    per_tid = collections.defaultdict(list)
    for fn, site, tid in rows:
        per_tid[tid].append((fn, site))
    # The queue thread: the one that parses requests.
    tid = max(per_tid, key=lambda t: sum(1 for fn, _ in per_tid[t] if name[fn] == PARSE))
    evs = [(fn, s) for fn, s in per_tid[tid]
           if mod[fn] and name[fn] not in POLL and name[s] not in POLL]
    nreq = sum(1 for fn, _ in evs if name[fn] == PARSE)
    if not nreq:
        sys.exit('kick-path: no request parsed in %s' % events)
    entered = collections.Counter(mod[fn] for fn, _ in evs)
    mods = sorted(m for m, c in entered.items() if c * 20 >= nreq)
    cross = collections.Counter((mod[s], name[fn]) for fn, s in evs
                                if mod[s] and mod[s] != mod[fn])
    total = sum(cross.values())
    print('KICKPATH %s requests=%d modules=%d crossings_per_request=%.2f' %
          (label, nreq, len(mods), total / nreq))
    print('  modules: %s' % ' '.join(mods))
    for (caller, callee), c in cross.most_common():
        if c * 20 >= nreq:
            print('  %-30s -> %-26s %6.2f' % (caller, callee, c / nreq))


if __name__ == '__main__':
    main()
