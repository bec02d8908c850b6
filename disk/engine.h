/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_ENGINE_H
#define TINYVMM_DISK_ENGINE_H

/*
 * For engines and the layer only: what an engine implements.  The layer
 * (disk.c) has checked every operation before an engine sees it, and the
 * offset is already a media offset (the range= window applied), so an
 * engine forms file offsets from it as they are.
 */
#include "disk/disk.h"

struct disk_engine;

struct disk_engine_ops {
	const char *name;
	/*
	 * DISK_SUBMITTED, or the result now (0 or -errno).  Never more than
	 * the depth it was made for in flight; io is copied, io->iov is not.
	 */
	int (*submit)(struct disk_engine *e, const struct disk_io *io);
	/*
	 * Optional: start what submit() queued.  0, or -errno when some of
	 * it could not be handed to the kernel yet (try again later).
	 */
	int (*commit)(struct disk_engine *e);
	/* Up to max completions; 0 when none is ready.  Never blocks. */
	unsigned int (*reap)(struct disk_engine *e, struct disk_done *out, unsigned int max);
	/* Make completed writes durable, now, from any thread. */
	int (*flush_sync)(struct disk_engine *e);
	/* Wait for what is in flight (dropping its completions) and free e. */
	void (*destroy)(struct disk_engine *e);
};

struct disk_engine {
	const struct disk_engine_ops *ops;
	int notify_fd;		/* readable while completions wait; -1: never submits */
};

/*
 * Build a disk around an engine (taking it over: disk_close destroys
 * it).  p->size is what the guest sees; start is added to every offset.
 * For disk_open() and for engines made by tests (memory, fault).
 */
int disk_assemble(struct disk **out, struct disk_engine *e, const struct disk_props *p,
		  uint64_t start);
/* The engine under d, and putting another in its place (a fault filter). */
struct disk_engine *disk_engine(struct disk *d);
void disk_set_engine(struct disk *d, struct disk_engine *e);

/*
 * The file engines, made by disk_open() over an opened file (which the
 * engine then owns: its destroy closes and frees f).  0 or -errno, with
 * f untouched on failure.
 */
struct disk_file;
int disk_uring_create(struct disk_engine **out, struct disk_file *f, unsigned int depth);
int disk_threads_create(struct disk_engine **out, struct disk_file *f, unsigned int depth);

/*
 * The NBD engine, made by disk_open() for an NBD URI: connects, checks
 * the export against c, fills *p (but the engine name) and *start.  One
 * error line; -errno.
 */
int disk_nbd_create(struct disk_engine **out, const struct disk_conf *c, struct disk_props *p,
		    uint64_t *start);

#endif
