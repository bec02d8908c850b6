#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus for the fuzz targets (fuzz/harness.c and
fuzz/harness_pci.c describe the input layouts).  The output is committed
under fuzz/corpus/; run this only to regenerate it:

    python3 fuzz/gen-corpus.py fuzz/corpus
"""
import os
import struct
import sys

# ---- blk: header, then RAM from the ring (PFN 1: gpa 0x1000) ----------
PFN = 1
BASE = PFN * 4096
F_WRITEBACK, F_RO_OPT, F_SERIAL = 0x01, 0x02, 0x08
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_BOGUS = 0, 1, 4, 8, 0x77
T_DISCARD, T_WRITE_ZEROES = 11, 13
NEXT, WRITE, INDIRECT = 1, 2, 4


class Ring:
    def __init__(self, num):
        self.num = num
        self.avail = 16 * num
        used = (self.avail + 6 + 2 * num + 4095) & ~4095
        self.buf = used + ((6 + 8 * num + 15) & ~15)   # next buffer (body offset)
        self.ram = bytearray(self.buf)       # body: ring, then buffers
        self.nreq = 0

    def alloc(self, n, fill=0):
        off = self.buf
        self.buf += (n + 15) & ~15
        if self.buf > len(self.ram):
            self.ram.extend(bytes(self.buf - len(self.ram)))
        self.ram[off:off + n] = bytes([fill]) * n
        return BASE + off                    # a gpa

    def put(self, gpa, data):
        off = gpa - BASE
        self.ram[off:off + len(data)] = data

    def desc(self, table_gpa, i, addr, ln, flags, nxt):
        self.put(table_gpa + 16 * i, struct.pack('<QIHH', addr, ln, flags, nxt))

    def publish(self, head):
        self.put(BASE + self.avail + 4 + 2 * (self.nreq % self.num), struct.pack('<H', head))
        self.nreq += 1
        self.put(BASE + self.avail + 2, struct.pack('<H', self.nreq))

    def hdr(self, typ, sector):
        g = self.alloc(16)
        self.put(g, struct.pack('<IIQ', typ, 0, sector))
        return g

    def request(self, head, typ, sector, segs, indirect=False):
        """segs: list of (len, writable) or (bytes, False); header first, status last."""
        chain = [(self.hdr(typ, sector), 16, 0)]
        for ln, w in segs:
            if isinstance(ln, bytes):
                g = self.alloc(len(ln))
                self.put(g, ln)
                chain.append((g, len(ln), 0))
                continue
            chain.append((self.alloc(ln, 0x5a), ln, WRITE if w else 0))
        chain.append((self.alloc(1, 0xee), 1, WRITE))
        if indirect:
            table = self.alloc(16 * len(chain))
            for i, (a, ln, f) in enumerate(chain):
                last = i == len(chain) - 1
                self.desc(table, i, a, ln, f | (0 if last else NEXT), i + 1)
            self.desc(BASE, head, table, 16 * len(chain), INDIRECT, 0)
            self.publish(head)
            return head + 1
        i = head
        for n, (a, ln, f) in enumerate(chain):
            last = n == len(chain) - 1
            self.desc(BASE, i, a, ln, f | (0 if last else NEXT), i + 1)
            i += 1
        self.publish(head)
        return i

    def blob(self, flags=0, start=0):
        log2 = self.num.bit_length() - 1
        return bytes([log2, PFN, flags]) + struct.pack('<H', start) + bytes(self.ram)


def blk_seeds():
    s = {}
    r = Ring(16)
    h = r.request(0, T_OUT, 2, [(1024, False)])
    h = r.request(h, T_IN, 2, [(512, True), (512, True)])
    h = r.request(h, T_FLUSH, 0, [])
    r.request(h, T_GET_ID, 0, [(20, True)])
    s['blk-rw-flush-id'] = r.blob()

    r = Ring(8)
    h = r.request(0, T_OUT, 0, [(512, False)], indirect=True)
    r.request(h, T_IN, 63, [(512, True)], indirect=True)
    s['blk-indirect'] = r.blob(F_WRITEBACK | F_SERIAL)

    r = Ring(4)
    h = r.request(0, T_OUT, 1, [(512, False)])
    r.request(h, T_BOGUS, 0, [])
    s['blk-ro-unsupp'] = r.blob(F_RO_OPT, start=0xfffe)   # indices wrap

    r = Ring(16)
    h = r.request(0, T_IN, 64, [(512, True)])              # past the end
    # a chain that loops back on itself, then a good one
    r.desc(BASE, h, r.alloc(16), 16, NEXT, h + 1)
    r.desc(BASE, h + 1, r.alloc(1), 1, WRITE | NEXT, h)
    r.publish(h)
    r.request(h + 2, T_IN, 0, [(512, True)])
    s['blk-bad-chain'] = r.blob()

    # refused chains with and without a status byte to answer in
    r = Ring(16)
    h = r.request(0, T_IN, 0, [(512, True)])
    r.desc(BASE, 1, 0x10000, 512, WRITE | NEXT, 2)       # data past RAM
    h = r.request(h, T_OUT, 0, [(512, False)])
    r.desc(BASE, 3, r.alloc(16), 16, WRITE | NEXT, 4)     # writable header
    r.desc(BASE, 5, r.alloc(1), 1, 0, 0)                  # readable status
    st = r.alloc(1, 0xee)
    r.desc(BASE, h, r.alloc(16), 16, NEXT, h + 1)
    r.desc(BASE, h + 1, st, 1, WRITE | NEXT, 16)          # next out of range
    r.publish(h)
    s['blk-refused-status'] = r.blob()

    # DISCARD / WRITE_ZEROES: good segments, then bad flags, past the end,
    # wrapping, a count of 0, too many segments
    def seg(sector, count, flags=0):
        return struct.pack('<QII', sector, count, flags)
    r = Ring(16)
    h = r.request(0, T_DISCARD, 0, [(seg(0, 8) + seg(16, 8), False)])
    h = r.request(h, T_WRITE_ZEROES, 0, [(seg(8, 8, 1), False)])
    h = r.request(h, T_WRITE_ZEROES, 0, [(seg(24, 8), False)])
    h = r.request(h, T_DISCARD, 0, [(seg(0, 8, 1), False)])
    r.request(h, T_IN, 0, [(4096, True)])
    s['blk-dwz'] = r.blob()
    r = Ring(16)
    h = r.request(0, T_WRITE_ZEROES, 0, [(seg(60, 8), False)])
    h = r.request(h, T_DISCARD, 0, [(seg(2**64 - 4, 8), False)])
    h = r.request(h, T_DISCARD, 0, [(seg(0, 0), False)])
    h = r.request(h, T_DISCARD, 0, [(b''.join(seg(i, 1) for i in range(17)), False)])
    h = r.request(h, T_WRITE_ZEROES, 0, [((seg(0, 1) + seg(8, 1))[:24], False)])
    r.request(h, T_WRITE_ZEROES, 0, [(seg(0, 1, 6), False)])         # reserved flag
    s['blk-dwz-hostile'] = r.blob(F_WRITEBACK)
    r = Ring(8)
    r.request(0, T_DISCARD, 0, [(seg(0, 8), False)])
    s['blk-dwz-ro'] = r.blob(F_RO_OPT)
    return s


# ---- pci: header, then 8-byte operations -------------------------------
def pci_op(kind, size_idx=0, off=0, arg=0, val=0):
    return struct.pack('<BBBBI', kind | size_idx << 3, off, arg, 0, val)


def pci_seeds():
    s = {}
    hdr = bytes([0, 34, 4, 4, 4, 4]) + struct.pack('<I', (1 << 9) | (1 << 28))
    rd = lambda off, si: pci_op(0, si, off)
    wr = lambda off, si, val: pci_op(3, si, off, val=val)
    # Linux probe: reset, ACK|DRIVER, features, queue 0 at PFN 1, DRIVER_OK
    ops = [wr(18, 0, 0), wr(18, 0, 3), rd(0, 2), wr(4, 2, (1 << 9)),
           wr(14, 1, 0), rd(12, 1), wr(8, 2, 1), wr(18, 0, 7),
           rd(20, 2), rd(52, 0), wr(52, 0, 1)]
    # a request in RAM (descriptor 0 at 0x1000, avail at 0x1100): kick it
    for gpa, v in ((0x1000, 0x2000), (0x1008, 16),
                   (0x1100, 1 << 16)):
        ops.append(pci_op(7, 0, (gpa // 4) & 0xff, (gpa // 4) >> 8, v))
    ops += [wr(16, 1, 0), rd(19, 0), rd(19, 0), pci_op(5, 0, 0, 1),
            pci_op(6), rd(18, 0), wr(18, 0, 0), rd(0, 3), rd(17, 2)]
    s['pci-probe'] = hdr + b''.join(ops)
    # a resampling irqfd (header bit 7): edges during a handler, EOIs with
    # bits read and unread, their reports, a reset with the line up
    # (bit 6 too: EOIs reported at delivery, and the re-check of bits left)
    raise_q, eoi, report = pci_op(5, 0, 0, 0), pci_op(6, 0, 0, 1), pci_op(6, 0, 0, 2)
    recheck = pci_op(6, 0, 0, 3)
    ops = [raise_q, rd(19, 0), raise_q, rd(19, 0), eoi, report,
           raise_q, rd(19, 0), raise_q, eoi, report, rd(19, 0), eoi, report,
           raise_q, eoi, report, raise_q, rd(19, 0), wr(18, 0, 0), raise_q,
           eoi, raise_q, report, rd(19, 0), pci_op(6), eoi, report, recheck,
           raise_q, eoi, report, recheck, rd(19, 0), eoi, report]
    s['pci-resample'] = bytes([0x80]) + hdr[1:] + b''.join(ops)
    s['pci-resample-early'] = bytes([0xc0]) + hdr[1:] + b''.join(ops)
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'fuzz/corpus'
    for sub, seeds in (('blk', blk_seeds()), ('pci', pci_seeds())):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, sub, name), 'wb') as f:
                f.write(data)


if __name__ == '__main__':
    main()
