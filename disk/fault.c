// SPDX-License-Identifier: MIT
/*
 * The fault filter, for tests: an engine that wraps another.  Ops go to
 * the engine underneath with a slot number of the filter's own as their
 * cookie, so that whatever comes back is matched to the op it answers
 * (its rules, its hold, its trace) without trusting the caller's cookies
 * to be distinct.  Answers the filter makes itself (held ones released,
 * the engine's done-now answers turned into DISK_SUBMITTED) wait on a
 * queue with an eventfd, and the notify fd is an epoll fd over that
 * eventfd and the engine's own fd: readable when either is.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "disk/engine.h"
#include "disk/fault.h"
#include "lib/efd.h"

struct fault_slot {
	struct disk_io io;	/* as submitted, with the caller's cookie */
	int after;		/* a rule's error to report instead; 0: none */
	bool used;
	unsigned int next_free;
};

/* An answer the filter hands out itself. */
struct fault_answer {
	struct disk_io io;
	int result;
	bool held;
};

struct fault {
	struct disk_engine e;		/* first: the engine pointer is ours */
	struct disk_engine_ops ops;	/* fault_ops, named after the engine */
	char name[64];
	struct disk_engine *inner;
	struct disk_fault_rule *rules;
	unsigned int *seen;		/* ops each rule matched */
	unsigned int nr_rules;
	struct efd_level ready;		/* readable while an unheld answer waits */
	/* Everything below: under lock (hold/release/trace come from any thread). */
	pthread_mutex_t lock;
	struct fault_slot *slots;
	unsigned int nr_slots, slots_used, free_slot;	/* free_slot == nr_slots: none */
	struct fault_answer *q;
	unsigned int q_len, q_cap, q_ready;
	struct disk_fault_rule hold;	/* what is held: ops 0 here holds nothing */
	disk_fault_trace_fn *trace;
	void *opaque;
};

static int fault_submit(struct disk_engine *e, const struct disk_io *io);

static struct fault *to_fault(struct disk_engine *e)
{
	return (struct fault *)e;
}

/* The filter on d; calling disk_fault_*() on another disk is a broken test. */
static struct fault *fault_of(struct disk *d)
{
	struct disk_engine *e = disk_engine(d);

	if (e->ops->submit != fault_submit) {
		fprintf(stderr, "disk/fault: the disk's engine (%s) is no fault filter\n",
			e->ops->name);
		abort();
	}
	return to_fault(e);
}

static void fault_trace(struct fault *f, enum disk_fault_event ev, const struct disk_io *io,
			int result)
{
	if (f->trace)
		f->trace(f->opaque, ev, io, io->cookie, result);
}

static bool fault_rule_hits(const struct disk_fault_rule *r, const struct disk_io *io)
{
	uint64_t r_end = r->offset + r->len < r->offset ? UINT64_MAX : r->offset + r->len;

	if (r->ops && !((uint32_t)io->op < 32 && (r->ops & (1u << io->op))))
		return false;
	if (!r->len)
		return true;
	if (io->op == DISK_OP_FLUSH)
		return false;
	return io->offset < r_end && r->offset < io->offset + io->len;
}

/* Count io against every rule; the first that fires, or NULL.  Under lock. */
static const struct disk_fault_rule *fault_match(struct fault *f, const struct disk_io *io)
{
	const struct disk_fault_rule *hit = NULL, *r;
	unsigned int i;

	for (i = 0; i < f->nr_rules; i++) {
		r = &f->rules[i];
		if (!fault_rule_hits(r, io))
			continue;
		f->seen[i]++;
		if (!hit && f->seen[i] > r->skip &&
		    (!r->count || f->seen[i] - r->skip <= r->count))
			hit = r;
	}
	return hit;
}

/*
 * Room for one more op: a free slot, and a queue that can take an answer
 * for it and for every op in flight, so that reap() and release() never
 * need memory.  Under lock; false: out of memory.
 */
static bool fault_reserve(struct fault *f)
{
	unsigned int need = f->q_len + f->slots_used + 1, i;
	void *p;

	if (f->q_cap < need) {
		p = realloc(f->q, (size_t)need * 2 * sizeof(*f->q));
		if (!p)
			return false;
		f->q = p;
		f->q_cap = need * 2;
	}
	if (f->free_slot < f->nr_slots)
		return true;
	p = realloc(f->slots, ((size_t)f->nr_slots * 2 + 8) * sizeof(*f->slots));
	if (!p)
		return false;
	f->slots = p;
	for (i = f->nr_slots; i < f->nr_slots * 2 + 8; i++) {
		f->slots[i].used = false;
		f->slots[i].next_free = i + 1;
	}
	f->free_slot = f->nr_slots;
	f->nr_slots = f->nr_slots * 2 + 8;
	return true;
}

static unsigned int fault_slot_get(struct fault *f, const struct disk_io *io, int after)
{
	unsigned int i = f->free_slot;

	f->free_slot = f->slots[i].next_free;
	f->slots[i].io = *io;
	f->slots[i].after = after;
	f->slots[i].used = true;
	f->slots_used++;
	return i;
}

static void fault_slot_put(struct fault *f, unsigned int i)
{
	f->slots[i].used = false;
	f->slots[i].next_free = f->free_slot;
	f->free_slot = i;
	f->slots_used--;
}

static bool fault_holds(const struct fault *f, const struct disk_io *io)
{
	return f->hold.ops && fault_rule_hits(&f->hold, io);
}

/* Queue an answer (room was reserved); held unless hold does not cover it. */
static void fault_queue(struct fault *f, const struct disk_io *io, int result)
{
	struct fault_answer *a = &f->q[f->q_len++];

	a->io = *io;
	a->result = result;
	a->held = fault_holds(f, io);
	if (!a->held) {
		f->q_ready++;
		efd_level_update(&f->ready, f->q_ready > 0);
	}
}

/* A done-now answer: held (then DISK_SUBMITTED) or handed back.  Under lock. */
static int fault_done_now(struct fault *f, const struct disk_io *io, int result)
{
	if (fault_holds(f, io)) {
		fault_queue(f, io, result);
		return DISK_SUBMITTED;
	}
	fault_trace(f, DISK_FAULT_DONE_NOW, io, result);
	return result;
}

static int fault_submit(struct disk_engine *e, const struct disk_io *io)
{
	struct fault *f = to_fault(e);
	const struct disk_fault_rule *r;
	struct disk_io down = *io;
	unsigned int slot;
	int ret;

	pthread_mutex_lock(&f->lock);
	if (!fault_reserve(f)) {
		pthread_mutex_unlock(&f->lock);
		return -ENOMEM;
	}
	r = fault_match(f, io);
	if (r && !r->after) {
		ret = fault_done_now(f, io, r->error);
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	slot = fault_slot_get(f, io, r ? r->error : 0);
	fault_trace(f, DISK_FAULT_SUBMIT, io, 0);
	pthread_mutex_unlock(&f->lock);

	down.cookie = slot;
	ret = f->inner->ops->submit(f->inner, &down);
	if (ret == DISK_SUBMITTED)
		return ret;
	pthread_mutex_lock(&f->lock);
	if (f->slots[slot].after)
		ret = f->slots[slot].after;
	fault_slot_put(f, slot);
	ret = fault_done_now(f, io, ret);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static int fault_commit(struct disk_engine *e)
{
	struct fault *f = to_fault(e);

	return f->inner->ops->commit ? f->inner->ops->commit(f->inner) : 0;
}

/* Up to max unheld answers of the queue, oldest first.  Under lock. */
static unsigned int fault_take(struct fault *f, struct disk_done *out, unsigned int max)
{
	unsigned int i, kept = 0, n = 0;

	for (i = 0; i < f->q_len; i++) {
		struct fault_answer *a = &f->q[i];

		if (n < max && !a->held) {
			out[n].cookie = a->io.cookie;
			out[n++].result = a->result;
			fault_trace(f, DISK_FAULT_REAPED, &a->io, a->result);
			continue;
		}
		f->q[kept++] = *a;
	}
	f->q_len = kept;
	f->q_ready -= n;
	efd_level_update(&f->ready, f->q_ready > 0);
	return n;
}

/*
 * The engine's completions in out[0..k): back to the caller's cookies,
 * results a rule replaces replaced, held ones queued.  Returns how many
 * stay in out, packed.  Under lock.
 */
static unsigned int fault_sort(struct fault *f, struct disk_done *out, unsigned int k)
{
	unsigned int i, n = 0;
	struct disk_io io;
	int result;

	for (i = 0; i < k; i++) {
		if (out[i].cookie >= f->nr_slots || !f->slots[out[i].cookie].used) {
			/* Passed up as it came: the caller sees a cookie it never gave. */
			fprintf(stderr, "disk/fault: %s completed %llu, which it was not given\n",
				f->inner->ops->name, (unsigned long long)out[i].cookie);
			out[n++] = out[i];
			continue;
		}
		io = f->slots[out[i].cookie].io;
		result = f->slots[out[i].cookie].after ? : out[i].result;
		fault_slot_put(f, out[i].cookie);
		if (fault_holds(f, &io)) {
			fault_queue(f, &io, result);
			continue;
		}
		fault_trace(f, DISK_FAULT_REAPED, &io, result);
		out[n].cookie = io.cookie;
		out[n++].result = result;
	}
	return n;
}

static unsigned int fault_reap(struct disk_engine *e, struct disk_done *out, unsigned int max)
{
	struct fault *f = to_fault(e);
	unsigned int n, k;

	pthread_mutex_lock(&f->lock);
	n = fault_take(f, out, max);
	pthread_mutex_unlock(&f->lock);
	/* Until out is full or the engine has nothing: held ones take no room. */
	while (n < max) {
		k = f->inner->ops->reap(f->inner, out + n, max - n);
		if (!k)
			break;
		pthread_mutex_lock(&f->lock);
		n += fault_sort(f, out + n, k);
		pthread_mutex_unlock(&f->lock);
	}
	return n;
}

static int fault_flush_sync(struct disk_engine *e)
{
	static const struct disk_io flush = { .op = DISK_OP_FLUSH };
	struct fault *f = to_fault(e);
	const struct disk_fault_rule *r;
	int ret;

	pthread_mutex_lock(&f->lock);
	r = fault_match(f, &flush);
	pthread_mutex_unlock(&f->lock);
	if (r && !r->after) {
		ret = r->error;
	} else {
		ret = f->inner->ops->flush_sync(f->inner);
		if (r)
			ret = r->error;
	}
	pthread_mutex_lock(&f->lock);
	fault_trace(f, DISK_FAULT_FLUSH_SYNC, &flush, ret);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static void fault_free(struct fault *f)
{
	if (f->e.notify_fd >= 0)
		close(f->e.notify_fd);
	if (f->ready.fd >= 0)
		close(f->ready.fd);
	pthread_mutex_destroy(&f->lock);
	free(f->slots);
	free(f->q);
	free(f->seen);
	free(f->rules);
	free(f);
}

/* What was in flight is dropped with the engine: nothing to answer. */
static void fault_destroy(struct disk_engine *e)
{
	struct fault *f = to_fault(e);

	f->inner->ops->destroy(f->inner);
	fault_free(f);
}

static const struct disk_engine_ops fault_ops = {
	.submit = fault_submit,
	.commit = fault_commit,
	.reap = fault_reap,
	.flush_sync = fault_flush_sync,
	.destroy = fault_destroy,
};

/* The epoll fd over the eventfd and the engine's fd.  0 or -errno. */
static int fault_fds(struct fault *f)
{
	struct epoll_event ev = { .events = EPOLLIN };

	f->ready.fd = efd_open();
	if (f->ready.fd < 0)
		return f->ready.fd;
	f->e.notify_fd = epoll_create1(EPOLL_CLOEXEC);
	if (f->e.notify_fd < 0)
		return -errno;
	if (epoll_ctl(f->e.notify_fd, EPOLL_CTL_ADD, f->ready.fd, &ev) < 0)
		return -errno;
	if (f->inner->notify_fd >= 0 &&
	    epoll_ctl(f->e.notify_fd, EPOLL_CTL_ADD, f->inner->notify_fd, &ev) < 0)
		return -errno;
	return 0;
}

int disk_fault_wrap(struct disk *d, const struct disk_fault_rule *rules, unsigned int n)
{
	struct fault *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->ready.fd = f->e.notify_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	f->inner = disk_engine(d);
	f->rules = calloc(n ? n : 1, sizeof(*rules));
	f->seen = calloc(n ? n : 1, sizeof(*f->seen));
	if (!f->rules || !f->seen) {
		fault_free(f);
		return -ENOMEM;
	}
	if (n)
		memcpy(f->rules, rules, n * sizeof(*rules));
	f->nr_rules = n;
	ret = fault_fds(f);
	if (ret) {
		fault_free(f);
		return ret;
	}
	snprintf(f->name, sizeof(f->name), "fault(%s)", f->inner->ops->name);
	f->ops = fault_ops;
	f->ops.name = f->name;
	f->e.ops = &f->ops;
	disk_set_engine(d, &f->e);
	return 0;
}

void disk_fault_set_trace(struct disk *d, disk_fault_trace_fn *fn, void *opaque)
{
	struct fault *f = fault_of(d);

	pthread_mutex_lock(&f->lock);
	f->trace = fn;
	f->opaque = opaque;
	pthread_mutex_unlock(&f->lock);
}

void disk_fault_hold_range(struct disk *d, uint32_t ops_mask, uint64_t offset, uint64_t len)
{
	struct fault *f = fault_of(d);

	pthread_mutex_lock(&f->lock);
	f->hold = (struct disk_fault_rule){ .ops = ops_mask, .offset = offset, .len = len };
	pthread_mutex_unlock(&f->lock);
}

void disk_fault_hold(struct disk *d, uint32_t ops_mask)
{
	disk_fault_hold_range(d, ops_mask, 0, 0);
}

void disk_fault_release(struct disk *d)
{
	struct fault *f = fault_of(d);
	unsigned int i;

	pthread_mutex_lock(&f->lock);
	f->hold.ops = 0;
	for (i = 0; i < f->q_len; i++) {
		if (f->q[i].held) {
			f->q[i].held = false;
			f->q_ready++;
		}
	}
	efd_level_update(&f->ready, f->q_ready > 0);
	pthread_mutex_unlock(&f->lock);
}

unsigned int disk_fault_held(struct disk *d)
{
	struct fault *f = fault_of(d);
	unsigned int n;

	pthread_mutex_lock(&f->lock);
	n = f->q_len - f->q_ready;
	pthread_mutex_unlock(&f->lock);
	return n;
}
