// SPDX-License-Identifier: MIT
/*
 * The layer every engine goes through: the media's properties, the
 * range= window, and the checks that keep an operation inside the disk
 * whatever the caller got wrong.  This is the last line before an offset
 * reaches an engine, and so a file.
 *
 * With O_DIRECT (direct) it also owns the alignment: an offset or length
 * that is not a multiple of O_DIRECT's block is refused, and buffers that
 * are not aligned (a guest's iovecs can be anything) go through an
 * aligned bounce buffer of the layer's, so every engine gets I/O the
 * kernel takes.  Each operation then holds a slot (the caller's cookie,
 * the bounce buffer) until it is reaped.  What bounce buffers may hold is
 * bounded (DISK_BOUNCE_BUDGET a struct disk, so a queue): one request
 * of a guest's can name 4 GiB of buffers over a few pages of its RAM,
 * and a queue holds depth of them.  An operation that does not fit is
 * done on the spot instead, a chunk at a time through one buffer of the
 * disk's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/engine.h"
#include "disk/file.h"
#include "lib/util.h"

#define DISK_SECTOR	512
/* direct: the chunk of an operation done on the spot (a multiple of any O_DIRECT block) */
#define DISK_BOUNCE_CHUNK	(1u << 20)

/* direct: one operation between submit and reap. */
struct disk_slot {
	uint64_t cookie;		/* the caller's */
	void *bounce;			/* aligned copy of the data, NULL: none */
	const struct iovec *iov;	/* the caller's buffers: a READ copies back */
	unsigned int cnt;
	uint64_t len;
	bool read;
	struct iovec biov;		/* what the engine gets instead */
	struct disk_slot *next;		/* free list */
};

struct disk {
	struct disk_engine *eng;
	struct disk_props props;
	uint64_t start;			/* byte offset of the window in the media */
	unsigned int in_flight;		/* DISK_SUBMITTED, not yet reaped */
	struct disk_slot *slots, *free_slots;	/* direct only */
	unsigned int nr_slots;
	uint64_t bounce_held;		/* bytes the slots' bounce buffers hold */
	void *chunk;			/* DISK_BOUNCE_CHUNK bytes, made when first needed */
	/*
	 * The engine's file (it owns it), NULL: none or a filter in the way.
	 * For disk_open_queue(), and for an operation done on the spot.
	 */
	struct disk_file *file;
	enum disk_engine_kind kind;	/* the file engine made (never DEFAULT) */
	unsigned int depth;
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
	/* A queue of its own would bypass the filter. */
	d->file = NULL;
	d->eng = e;
	d->props.engine = e->ops->name;
}

/* Sum of the iov lengths, or -EINVAL past SSIZE_MAX. */
static int64_t disk_iov_len(const struct iovec *iov, unsigned int cnt)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	return total;
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

static bool disk_iov_aligned(const struct disk *d, const struct iovec *iov, unsigned int cnt)
{
	uint64_t mem = d->props.dio_mem_align - 1, len = d->props.dio_off_align - 1;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		if (((uintptr_t)iov[i].iov_base & mem) || (iov[i].iov_len & len))
			return false;
	return true;
}

/* A slot's operation ended with result: copy a bounced READ back, free the slot. */
static int disk_slot_done(struct disk *d, struct disk_slot *s, int result)
{
	if (s->bounce) {
		if (s->read && !result)
			iov_from_buf(s->iov, s->cnt, 0, s->bounce, s->len);
		free(s->bounce);
		s->bounce = NULL;
		d->bounce_held -= s->len;
	}
	s->next = d->free_slots;
	d->free_slots = s;
	return result;
}

/* direct: a READ or WRITE whose buffers O_DIRECT does not take as they are. */
static bool disk_bounces(const struct disk *d, const struct disk_io *m)
{
	return (m->op == DISK_OP_READ || m->op == DISK_OP_WRITE) &&
	       !disk_iov_aligned(d, m->iov, m->cnt);
}

/* direct: take a slot for m, bouncing its buffers if bounce is set. */
static int disk_slot_take(struct disk *d, struct disk_io *m, bool bounce,
			  struct disk_slot **out)
{
	struct disk_slot *s = d->free_slots;

	if (!s)
		return -EBUSY;
	if (bounce) {
		if (posix_memalign(&s->bounce, MAX(d->props.dio_mem_align, d->props.dio_off_align),
				   m->len)) {
			s->bounce = NULL;
			return -ENOMEM;
		}
		d->bounce_held += m->len;
		s->read = m->op == DISK_OP_READ;
		s->iov = m->iov;
		s->cnt = m->cnt;
		s->len = m->len;
		if (!s->read)
			iov_to_buf(m->iov, m->cnt, 0, s->bounce, m->len);
		s->biov = (struct iovec){ .iov_base = s->bounce, .iov_len = m->len };
		m->iov = &s->biov;
		m->cnt = 1;
	}
	d->free_slots = s->next;
	s->cookie = m->cookie;
	m->cookie = (uintptr_t)s;
	*out = s;
	return 0;
}

/*
 * direct: a bounced READ or WRITE past the budget, done here and now
 * through the disk's chunk buffer (a FUA write's every chunk durable
 * before the next).  0 or -errno.
 */
static int disk_bounce_sync(struct disk *d, const struct disk_io *m)
{
	struct disk_io c = *m;
	struct iovec v;
	uint64_t pos, n;
	int ret = 0;

	/* A filter in the way: the engine's is the only way to the file. */
	if (!d->file)
		return -ENOMEM;
	if (!d->chunk && posix_memalign(&d->chunk, MAX(d->props.dio_mem_align,
						       d->props.dio_off_align),
					DISK_BOUNCE_CHUNK)) {
		d->chunk = NULL;
		return -ENOMEM;
	}
	c.iov = &v;
	c.cnt = 1;
	for (pos = 0; pos < m->len && !ret; pos += n) {
		n = MIN(m->len - pos, DISK_BOUNCE_CHUNK);
		v = (struct iovec){ .iov_base = d->chunk, .iov_len = n };
		c.offset = m->offset + pos;
		c.len = n;
		if (m->op == DISK_OP_WRITE)
			iov_to_buf(m->iov, m->cnt, pos, d->chunk, n);
		ret = disk_file_exec(d->file, &c, 0);
		if (!ret && m->op == DISK_OP_READ)
			iov_from_buf(m->iov, m->cnt, pos, d->chunk, n);
	}
	return ret;
}

/* direct: m as O_DIRECT takes it, in a slot; or done now (not DISK_SUBMITTED). */
static int disk_direct_prepare(struct disk *d, struct disk_io *m, struct disk_slot **s)
{
	bool bounce;
	int ret;

	if (m->op != DISK_OP_FLUSH && ((m->offset | m->len) & (d->props.dio_off_align - 1)))
		return -EINVAL;
	bounce = disk_bounces(d, m);
	if (bounce && m->len > DISK_BOUNCE_BUDGET - d->bounce_held)
		return disk_bounce_sync(d, m);
	ret = disk_slot_take(d, m, bounce, s);
	/* No memory for the copy: a chunk at a time needs less. */
	return ret == -ENOMEM ? disk_bounce_sync(d, m) : ret;
}

int disk_submit(struct disk *d, const struct disk_io *io)
{
	struct disk_slot *s = NULL;
	struct disk_io m = *io;
	int ret = disk_check(d, io);

	if (ret)
		return ret;
	if (m.op == DISK_OP_FLUSH)
		m.offset = m.len = 0;
	else
		m.offset += d->start;
	if (d->slots) {
		ret = disk_direct_prepare(d, &m, &s);
		if (!s)
			return ret;
	}
	ret = d->eng->ops->submit(d->eng, &m);
	if (ret == DISK_SUBMITTED)
		d->in_flight++;
	else if (s)
		ret = disk_slot_done(d, s, ret);
	return ret;
}

int disk_commit(struct disk *d)
{
	return d->eng->ops->commit ? d->eng->ops->commit(d->eng) : 0;
}

unsigned int disk_reap(struct disk *d, struct disk_done *out, unsigned int max)
{
	unsigned int i, n;

	if (!d->in_flight)
		return 0;
	n = d->eng->ops->reap(d->eng, out, max);
	d->in_flight -= n;
	for (i = 0; d->slots && i < n; i++) {
		struct disk_slot *s = (struct disk_slot *)(uintptr_t)out[i].cookie;

		out[i].cookie = s->cookie;
		out[i].result = disk_slot_done(d, s, out[i].result);
	}
	return n;
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
	unsigned int i;

	if (!d)
		return;
	d->eng->ops->destroy(d->eng);
	/* What was in flight was dropped with the engine: its bounce buffers too. */
	for (i = 0; i < d->nr_slots; i++)
		free(d->slots[i].bounce);
	free(d->slots);
	free(d->chunk);
	free(d);
}

/* ---- opening an image ----------------------------------------------------- */

static int disk_slots_init(struct disk *d, unsigned int depth)
{
	unsigned int i;

	d->slots = calloc(depth ? depth : 1, sizeof(*d->slots));
	if (!d->slots)
		return -ENOMEM;
	d->nr_slots = depth;
	for (i = depth; i-- > 0;) {
		d->slots[i].next = d->free_slots;
		d->free_slots = &d->slots[i];
	}
	return 0;
}

/*
 * io_uring unless refused; a refused default falls back to the thread
 * pool.  *kind: the engine made.
 */
static int disk_make_engine(struct disk_engine **e, struct disk_file *f,
			    const struct disk_conf *c, enum disk_engine_kind *kind)
{
	int ret;

	*kind = DISK_ENGINE_THREADS;
	if (c->engine == DISK_ENGINE_THREADS)
		return disk_threads_create(e, f, c->depth);
	ret = disk_uring_create(e, f, c->depth);
	if (!ret) {
		*kind = DISK_ENGINE_IO_URING;
		return 0;
	}
	if (c->engine == DISK_ENGINE_IO_URING) {
		pr_err("%s: aio=io_uring: the kernel refuses io_uring: %s", c->who,
		       strerror(-ret));
		return ret;
	}
	pr_info("%s: '%s': io_uring unavailable (%s): using aio=threads", c->who, c->path,
		strerror(-ret));
	return disk_threads_create(e, f, c->depth);
}

/* d's engine made over f, which it then owns; the slots for direct. */
static int disk_finish(struct disk **out, struct disk_engine *e, const struct disk_props *p,
		       uint64_t start, struct disk_file *f, enum disk_engine_kind kind,
		       unsigned int depth)
{
	int ret = disk_assemble(out, e, p, start);

	if (ret)
		return ret;
	(*out)->file = f;
	(*out)->kind = kind;
	(*out)->depth = depth;
	if (p->direct)
		ret = disk_slots_init(*out, depth);
	if (ret) {
		disk_close(*out);
		*out = NULL;
	}
	return ret;
}

int disk_open(struct disk **out, const struct disk_conf *c)
{
	struct disk_props p = { 0 };
	enum disk_engine_kind kind;
	struct disk_engine *e;
	struct disk_file *f;
	uint64_t start = 0;
	int ret;

	*out = NULL;
	if (disk_path_is_nbd(c->path)) {
		ret = disk_nbd_create(&e, c, &p, &start);
		return ret ? ret : disk_assemble(out, e, &p, start);
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = disk_file_open(f, c, &p, &start);
	if (ret) {
		free(f);
		return ret;
	}
	/* The engine owns f from here: its destroy closes and frees it. */
	ret = disk_make_engine(&e, f, c, &kind);
	if (ret) {
		disk_file_close(f);
		free(f);
		return ret;
	}
	return disk_finish(out, e, &p, start, f, kind, c->depth);
}

/*
 * The same file, opened again with the same flags: a file of its own
 * (not a dup), as the kernel reports a write-back error once per open
 * file -- through a shared one, a flush on one queue could take the error
 * a concurrent flush on another needed to see.  A flush through either
 * covers every write completed through both (fdatasync works on the
 * inode); the first open's OFD lock covers the image for both.
 */
static int disk_reopen(int fd)
{
	char path[32];
	int flags = fcntl(fd, F_GETFL), nfd;

	if (flags < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (flags & (O_ACCMODE | O_DIRECT)) | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}

bool disk_has_queues(const struct disk *d)
{
	return d->file != NULL;
}

int disk_open_queue(struct disk **out, const struct disk *d)
{
	struct disk_engine *e;
	struct disk_file *f;
	int ret;

	*out = NULL;
	if (!d->file)
		return -EOPNOTSUPP;
	f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = disk_reopen(d->file->fd);
	if (ret < 0) {
		free(f);
		return ret;
	}
	*f = *d->file;
	f->fd = ret;
	ret = d->kind == DISK_ENGINE_IO_URING ? disk_uring_create(&e, f, d->depth) :
					       disk_threads_create(&e, f, d->depth);
	if (ret) {
		close(f->fd);
		free(f);
		return ret;
	}
	return disk_finish(out, e, &d->props, d->start, f, d->kind, d->depth);
}
