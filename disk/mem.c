// SPDX-License-Identifier: MIT
/*
 * The memory engine, for tests: the media is a zero-filled buffer and
 * every operation is done in submit(), so a test of the layer or of a
 * device runs without files, threads or a kernel ring.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/engine.h"
#include "disk/mem.h"

struct mem_engine {
	struct disk_engine e;
	uint8_t *buf;
	uint64_t size;
};

static struct mem_engine *to_mem(struct disk_engine *e)
{
	return (struct mem_engine *)e;
}

/* Copy between the media at off and the iovecs; dir_write: into the media. */
static void mem_copy(struct mem_engine *m, const struct disk_io *io, bool dir_write)
{
	uint64_t off = io->offset, left = io->len;
	unsigned int i;

	for (i = 0; i < io->cnt && left; i++) {
		size_t n = io->iov[i].iov_len < left ? io->iov[i].iov_len : left;

		if (dir_write)
			memcpy(m->buf + off, io->iov[i].iov_base, n);
		else
			memcpy(io->iov[i].iov_base, m->buf + off, n);
		off += n;
		left -= n;
	}
}

static int mem_submit(struct disk_engine *e, const struct disk_io *io)
{
	struct mem_engine *m = to_mem(e);

	/*
	 * The layer promised this cannot happen; saying so here turns a
	 * layer that let one through into a failed test, not a corrupted heap.
	 */
	if (io->op != DISK_OP_FLUSH &&
	    (io->offset > m->size || io->len > m->size - io->offset)) {
		fprintf(stderr, "disk/mem: op %d at %llu+%llu is outside the %llu-byte media\n",
			io->op, (unsigned long long)io->offset,
			(unsigned long long)io->len, (unsigned long long)m->size);
		return -EFAULT;
	}
	switch (io->op) {
	case DISK_OP_READ:
		mem_copy(m, io, false);
		return 0;
	case DISK_OP_WRITE:
		mem_copy(m, io, true);
		return 0;
	case DISK_OP_DISCARD:
	case DISK_OP_WRITE_ZEROES:
		memset(m->buf + io->offset, 0, io->len);
		return 0;
	case DISK_OP_FLUSH:
		return 0;
	}
	return -EINVAL;
}

/* Nothing is ever in flight: every answer came from submit(). */
static unsigned int mem_reap(struct disk_engine *e, struct disk_done *out, unsigned int max)
{
	return 0;
}

static int mem_flush_sync(struct disk_engine *e)
{
	return 0;
}

static void mem_destroy(struct disk_engine *e)
{
	struct mem_engine *m = to_mem(e);

	free(m->buf);
	free(m);
}

static const struct disk_engine_ops mem_ops = {
	.name = "memory",
	.submit = mem_submit,
	.reap = mem_reap,
	.flush_sync = mem_flush_sync,
	.destroy = mem_destroy,
};

int disk_open_mem_props(struct disk **out, const struct disk_props *p)
{
	struct disk_props props = *p;
	struct mem_engine *m;

	if (!p->size || p->size % 512)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->buf = calloc(1, p->size);
	if (!m->buf) {
		free(m);
		return -ENOMEM;
	}
	m->size = p->size;
	m->e.ops = &mem_ops;
	m->e.notify_fd = -1;
	props.fd = -1;
	props.engine = mem_ops.name;
	return disk_assemble(out, &m->e, &props, 0);
}

int disk_open_mem(struct disk **out, uint64_t size, bool ro)
{
	const struct disk_props p = {
		.size = size,
		.logical_block = 512,
		.physical_block = 512,
		.ro = ro,
		.discard = true,
		.write_zeroes = true,
		.zeroes_unmap = true,
		.fd = -1,
	};

	return disk_open_mem_props(out, &p);
}
