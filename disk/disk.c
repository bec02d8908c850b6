// SPDX-License-Identifier: MIT
/*
 * The layer every engine goes through: the media's properties, the
 * range= window, and the checks that keep an operation inside the disk
 * whatever the caller got wrong.  This is the last line before an offset
 * reaches an engine, and so a file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/engine.h"
#include "disk/file.h"
#include "lib/util.h"

#define DISK_SECTOR	512

struct disk {
	struct disk_engine *eng;
	struct disk_props props;
	uint64_t start;			/* byte offset of the window in the media */
	unsigned int in_flight;		/* DISK_SUBMITTED, not yet reaped */
};

int disk_assemble(struct disk **out, struct disk_engine *e, const struct disk_props *p,
		  uint64_t start)
{
	struct disk *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d) {
		e->ops->destroy(e);
		return -ENOMEM;
	}
	d->eng = e;
	d->props = *p;
	d->props.engine = e->ops->name;
	d->start = start;
	*out = d;
	return 0;
}

struct disk_engine *disk_engine(struct disk *d)
{
	return d->eng;
}

void disk_set_engine(struct disk *d, struct disk_engine *e)
{
	d->eng = e;
	d->props.engine = e->ops->name;
}

/* Flags only where they mean something: FUA on writes, UNMAP on zeroing. */
static bool disk_flags_ok(const struct disk_io *io)
{
	uint32_t allowed = DISK_F_ALONE;

	if (io->op == DISK_OP_WRITE)
		allowed |= DISK_F_FUA;
	if (io->op == DISK_OP_WRITE_ZEROES)
		allowed |= DISK_F_UNMAP | DISK_F_FUA;
	return !(io->flags & ~allowed);
}

/* 0, or why io must not reach the engine. */
static int disk_check(const struct disk *d, const struct disk_io *io)
{
	const struct disk_props *p = &d->props;

	if ((unsigned int)io->op > DISK_OP_WRITE_ZEROES || !disk_flags_ok(io))
		return -EINVAL;
	if (io->op == DISK_OP_FLUSH)
		return 0;
	if (io->op != DISK_OP_READ && p->ro)
		return -EROFS;
	if ((io->op == DISK_OP_DISCARD && !p->discard) ||
	    (io->op == DISK_OP_WRITE_ZEROES && !p->write_zeroes))
		return -EOPNOTSUPP;
	if (!io->len || io->len % DISK_SECTOR || io->offset % DISK_SECTOR)
		return -EINVAL;
	if (io->offset > p->size || io->len > p->size - io->offset)
		return -ERANGE;
	if (io->op == DISK_OP_READ || io->op == DISK_OP_WRITE) {
		if (!io->cnt || disk_iov_len(io->iov, io->cnt) != (int64_t)io->len)
			return -EINVAL;
	}
	return 0;
}

int disk_submit(struct disk *d, const struct disk_io *io)
{
	struct disk_io m = *io;
	int ret = disk_check(d, io);

	if (ret)
		return ret;
	if (m.op == DISK_OP_FLUSH)
		m.offset = m.len = 0;
	else
		m.offset += d->start;
	ret = d->eng->ops->submit(d->eng, &m);
	if (ret == DISK_SUBMITTED)
		d->in_flight++;
	return ret;
}

void disk_commit(struct disk *d)
{
	if (d->eng->ops->commit)
		d->eng->ops->commit(d->eng);
}

unsigned int disk_reap(struct disk *d, struct disk_done *out, unsigned int max)
{
	unsigned int n;

	if (!d->in_flight)
		return 0;
	n = d->eng->ops->reap(d->eng, out, max);
	d->in_flight -= n;
	return n;
}

bool disk_ready(const struct disk *d)
{
	return d->in_flight && d->eng->ops->ready && d->eng->ops->ready(d->eng);
}

int disk_notify_fd(const struct disk *d)
{
	return d->eng->notify_fd;
}

unsigned int disk_in_flight(const struct disk *d)
{
	return d->in_flight;
}

int disk_flush_sync(struct disk *d)
{
	return d->eng->ops->flush_sync(d->eng);
}

const struct disk_props *disk_props(const struct disk *d)
{
	return &d->props;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	d->eng->ops->destroy(d->eng);
	free(d);
}

/* ---- opening an image ----------------------------------------------------- */

/* io_uring unless refused; a refused default falls back to the thread pool. */
static int disk_make_engine(struct disk_engine **e, struct disk_file *f,
			    const struct disk_conf *c)
{
	int ret;

	if (c->engine == DISK_ENGINE_THREADS)
		return disk_threads_create(e, f, c->depth);
	ret = disk_uring_create(e, f, c->depth);
	if (!ret)
		return 0;
	if (c->engine == DISK_ENGINE_IO_URING) {
		pr_err("%s: aio=io_uring: the kernel refuses io_uring: %s", c->who,
		       strerror(-ret));
		return ret;
	}
	pr_info("%s: '%s': io_uring unavailable (%s): using aio=threads", c->who, c->path,
		strerror(-ret));
	return disk_threads_create(e, f, c->depth);
}

int disk_open(struct disk **out, const struct disk_conf *c)
{
	struct disk_props p = { 0 };
	struct disk_engine *e;
	struct disk_file *f;
	uint64_t start = 0;
	int ret;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = disk_file_open(f, c, &p, &start);
	if (ret) {
		free(f);
		return ret;
	}
	/* The engine owns f from here: its destroy closes and frees it. */
	ret = disk_make_engine(&e, f, c);
	if (ret) {
		disk_file_close(f);
		free(f);
		return ret;
	}
	return disk_assemble(out, e, &p, start);
}
