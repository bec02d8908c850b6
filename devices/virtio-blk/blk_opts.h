/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_BLK_OPTS_H
#define TINYVMM_BLK_OPTS_H

/*
 * "-s N,virtio-blk,PATH[,opt...]" after the device name:
 *   writethru | writeback | ro | direct | sectorsize=L[/P] | range=LBA/SIZE |
 *   qsize=N | serial=STR | aio=threads|io_uring | poll=US | discard=unmap|ignore |
 *   reconnect-delay=MS | timeout=SECONDS | msix=on|off | mq=N
 * range= follows ACRN: LBA and SIZE are counted in logical sectors
 * (sectorsize L, default 512), so the window is bytes
 * [LBA*L, (LBA+SIZE)*L) of the file.
 *
 * Defaults: writethru, read-write, sectorsize=512/512, no range,
 * qsize=64, serial derived from the image (see blk.c).  writethru and
 * writeback may be repeated and the last one wins, ro may be repeated;
 * sectorsize=, range=, qsize= and serial= may each be given once (a
 * second one is an error, so that a typo cannot silently override).
 * sectorsize=L/P: L a power of two in 512..4096, P a power of two in
 * L..65536 (P defaults to L).  qsize: a power of two in 2..1024.
 * serial: 1..20 printable ASCII characters.  Numbers are decimal.
 *
 * aio= picks the disk engine (given once): threads (a pool of workers
 * doing synchronous I/O) or io_uring (one ring the queue thread submits
 * to and reaps from).  Without it, io_uring is used when the kernel
 * accepts it and threads otherwise (one info line says so); an explicit
 * aio=io_uring the kernel refuses is an error.
 *
 * poll=US (given once, 0..1000, default 32): how long at most the queue
 * thread polls the avail ring, with kicks suppressed, after it ran out
 * of work, before it sleeps until the next kick.  The window adapts (it
 * grows while requests come within it and shrinks while they do not), so
 * an idle disk costs no CPU.  0 never polls.  Any engine.  Without poll=,
 * a process that may run on one CPU only does not poll (the spinning
 * thread would hold the CPU the guest needs to make its next request).
 *
 * direct (may be repeated): open the image with O_DIRECT, bypassing the
 * host's page cache (as QEMU's cache=none); sectorsize= must then be at
 * least O_DIRECT's block size there (disk_open says so if not).
 *
 * discard= (given once, default unmap): whether the guest's DISCARD (and
 * WRITE_ZEROES with its unmap flag) may give the image's space back.
 * ignore keeps a preallocated image preallocated: DISCARD is not offered
 * and zeroing never punches holes.
 *
 * msix= (given once, default on): whether the function offers MSI-X
 * (one vector for config changes and one per queue).  A driver that does
 * not enable it (Linux with pci=nomsi) gets INTx either way; off is for
 * comparing the two and for guests whose MSI-X support is broken.
 *
 * mq=N (given once, 1..16): how many request queues the device offers
 * (VIRTIO_BLK_F_MQ when more than one), each served by its own thread
 * with its own kick eventfd, MSI-X vector and disk engine instance on the
 * same image.  Default: one per vCPU (at most 16).  An NBD export is
 * served through one connection, so one queue (mq= above 1 is an error).
 *
 * PATH may be an NBD URI: nbd://HOST[:PORT]/EXPORT or
 * nbd+unix:///EXPORT?socket=SOCKET (disk_path_is_nbd()).  The export's
 * size, read-only flag and block size come from the server; direct and
 * aio= are errors there.  reconnect-delay=MS (given once, NBD only,
 * 10..30000, default 500): how long after a lost connection the first
 * reconnect is tried; each failed attempt doubles it, up to 30 s.
 * timeout=SECONDS (given once, NBD only, 1..3600, default 30): a request
 * unanswered for that long drops the connection as lost.
 */
#include <stdbool.h>
#include <stdint.h>

#define BLK_MIN_RECONNECT_MS	10
#define BLK_MAX_RECONNECT_MS	30000
#define BLK_MIN_TIMEOUT_S	1
#define BLK_MAX_TIMEOUT_S	3600
#define BLK_DEFAULT_QSIZE	64
#define BLK_MAX_QSIZE		1024
#define BLK_ID_BYTES		20	/* VIRTIO_BLK_ID_BYTES */
#define BLK_DEFAULT_POLL_US	32
#define BLK_MAX_POLL_US		1000
#define BLK_MAX_QUEUES		16	/* mq= at most */

enum blk_aio {
	BLK_AIO_DEFAULT = 0,	/* io_uring if the kernel has it, else threads */
	BLK_AIO_THREADS,
	BLK_AIO_IO_URING,
};

struct blk_opts {
	char *path;
	bool ro;
	bool writeback;
	bool direct;
	uint32_t logical_block;		/* bytes, power of two 512..4096 */
	uint32_t physical_block;	/* bytes, power of two >= logical */
	bool has_range;
	uint64_t range_lba;		/* logical sectors */
	uint64_t range_sectors;		/* logical sectors, > 0 */
	uint16_t queue_size;
	bool has_serial;
	char serial[BLK_ID_BYTES + 1];
	enum blk_aio aio;
	bool has_poll;
	uint32_t poll_us;		/* most the queue thread polls, 0: never */
	bool discard_ignore;		/* discard=ignore */
	uint32_t reconnect_ms;		/* NBD: reconnect-delay=, 0: the default */
	uint32_t timeout_s;		/* NBD: timeout=, 0: the default */
	bool no_msix;			/* msix=off */
	uint32_t mq;			/* mq=, 0: the default */
};

/*
 * Parse args (PATH first).  On error prints one line naming the option
 * and its value (e.g. "virtio-blk: sectorsize=1000: not a power of two
 * between 512 and 4096") and returns -EINVAL.
 */
int blk_opts_parse(const char *args, struct blk_opts *o);
void blk_opts_free(struct blk_opts *o);

#endif
