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
The events are read a chunk at a time, three times over (the addresses, the
queue thread, the counts), so memory stays small however many there are.
"""
import array
import collections
import subprocess
import sys

POLL = {'virtq_avail_pending'}
PARSE = 'blk_req_parse'
CHUNK_ROWS = 1 << 20      # events read at a time: memory stays bounded


def chunks(events):
    """The events as (fn, site, tid) arrays, CHUNK_ROWS rows at a time."""
    with open(events, 'rb') as f:
        while True:
            raw = f.read(CHUNK_ROWS * 24)
            if len(raw) < 24:
                return
            q = array.array('Q')
            q.frombytes(raw[:len(raw) // 24 * 24])
            yield q[0::3], q[1::3], q[2::3]


def symbols(exe, events, srcdirs):
    """Name and module (None: outside the tree) of every address in the events."""
    seen = set()
    for fns, sites, _ in chunks(events):
        seen.update(fns)
        seen.update(sites)
    addrs = sorted(seen)
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
    return name, mod


def queue_thread(events, parse):
    """The thread that parses requests: the queue thread."""
    per_tid = collections.Counter()
    for fns, _, tids in chunks(events):
        for fn, tid in zip(fns, tids):
            if fn in parse:
                per_tid[tid] += 1
    if not per_tid:
        sys.exit('kick-path: no request parsed in %s' % events)
    return per_tid.most_common(1)[0][0]


def main():
    exe, events, label = sys.argv[1:4]
    name, mod = symbols(exe, events, sys.argv[4:])
    parse = {a for a, n in name.items() if n == PARSE}
    tid = queue_thread(events, parse)
    # Calls of the polling, calls made from it, and calls into code outside the tree.
    polling = {a for a, n in name.items() if n in POLL}
    skip = polling | {a for a in name if not mod[a]}
    nreq = 0
    entered, cross = collections.Counter(), collections.Counter()
    for fns, sites, tids in chunks(events):
        for fn, s, t in zip(fns, sites, tids):
            if t != tid or fn in skip or s in polling:
                continue
            nreq += fn in parse
            entered[mod[fn]] += 1
            if mod[s] and mod[s] != mod[fn]:
                cross[(mod[s], name[fn])] += 1
    if not nreq:
        sys.exit('kick-path: no request parsed on the queue thread in %s' % events)
    mods = sorted(m for m, c in entered.items() if c * 20 >= nreq)
    total = sum(cross.values())
    print('KICKPATH %s requests=%d modules=%d crossings_per_request=%.2f' %
          (label, nreq, len(mods), total / nreq))
    print('  modules: %s' % ' '.join(mods))
    for (caller, callee), c in cross.most_common():
        if c * 20 >= nreq:
            print('  %-30s -> %-26s %6.2f' % (caller, callee, c / nreq))


if __name__ == '__main__':
    main()
