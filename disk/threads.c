// SPDX-License-Identifier: MIT
/*
 * The thread-pool engine (aio=threads): worker threads do each operation
 * synchronously on the file (disk_file_exec) and post its completion on
 * a list; an eventfd tells the reaper.  For kernels without io_uring, and
 * as a second engine that the conformance suite holds the first to.
 *
 * The eventfd is readable exactly while the done list holds anything
 * (a poller must not spin on it, nor miss a completion): an efd_level
 * updated in the same hold of the lock as each change to the list.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/engine.h"
#include "disk/file.h"
#include "lib/efd.h"
#include "lib/util.h"

#define THREADS_MAX_WORKERS	8

struct thr_op {
	struct disk_io io;
	int result;
	struct thr_op *next;
};

struct disk_threads {
	struct disk_engine e;		/* first: the engine pointer is ours */
	struct disk_file *f;
	pthread_mutex_t lock;
	pthread_cond_t work;		/* pending non-empty, or stopping */
	struct thr_op *ops, *free;
	struct thr_op *pend_head, *pend_tail;
	struct thr_op *done_head, *done_tail;
	unsigned int busy;		/* taken from free, not yet reaped */
	unsigned int idle;		/* workers waiting for work */
	unsigned int queued;		/* submitted since the last commit */
	struct efd_level done;		/* e.notify_fd: done_head != NULL */
	bool stopping;
	unsigned int nr_workers;
	pthread_t workers[THREADS_MAX_WORKERS];
};

static struct disk_threads *thr_of(struct disk_engine *e)
{
	return (struct disk_threads *)e;
}

static void thr_list_add(struct thr_op **head, struct thr_op **tail, struct thr_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static void *thr_worker(void *arg)
{
	struct disk_threads *t = arg;
	struct thr_op *op;

	for (;;) {
		pthread_mutex_lock(&t->lock);
		while (!t->pend_head && !t->stopping) {
			t->idle++;
			pthread_cond_wait(&t->work, &t->lock);
			t->idle--;
		}
		/* Stopping still drains pending: every submitted op completes. */
		op = t->pend_head;
		if (op) {
			t->pend_head = op->next;
			if (!t->pend_head)
				t->pend_tail = NULL;
		}
		pthread_mutex_unlock(&t->lock);
		if (!op)
			return NULL;
		op->result = disk_file_exec(t->f, &op->io, 0);
		pthread_mutex_lock(&t->lock);
		thr_list_add(&t->done_head, &t->done_tail, op);
		efd_level_update(&t->done, true);
		pthread_mutex_unlock(&t->lock);
	}
}

static int thr_submit(struct disk_engine *e, const struct disk_io *io)
{
	struct disk_threads *t = thr_of(e);
	struct thr_op *op;

	pthread_mutex_lock(&t->lock);
	/* Nothing else in hand and no worker busy: a hand-off would only add wake-ups. */
	if ((io->flags & DISK_F_ALONE) && !t->busy) {
		pthread_mutex_unlock(&t->lock);
		return disk_file_exec(t->f, io, 0);
	}
	op = t->free;
	if (!op) {
		pthread_mutex_unlock(&t->lock);
		return -EBUSY;
	}
	t->free = op->next;
	t->busy++;
	op->io = *io;
	thr_list_add(&t->pend_head, &t->pend_tail, op);
	t->queued++;
	pthread_mutex_unlock(&t->lock);
	return DISK_SUBMITTED;
}

/*
 * Wake an idle worker for each op of the batch, while there are idle
 * ones (a running worker takes the next op itself).  Waking them as each
 * op came in let a woken worker preempt the submitter halfway through
 * its batch on a busy host, leaving the rest of the batch, and the
 * completions the submitter hands back, waiting behind it.
 */
static int thr_commit(struct disk_engine *e)
{
	struct disk_threads *t = thr_of(e);
	unsigned int n;

	pthread_mutex_lock(&t->lock);
	for (n = MIN(t->queued, t->idle); n; n--)
		pthread_cond_signal(&t->work);
	t->queued = 0;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/*
 * Move up to max of the done list to out; the ops go back to the free
 * list.  The eventfd is drained with the list emptied, in the same hold
 * of the lock, so a worker's signal is either drained with its op taken
 * here or written after, for an op still on the list.
 */
static unsigned int thr_reap(struct disk_engine *e, struct disk_done *out, unsigned int max)
{
	struct disk_threads *t = thr_of(e);
	unsigned int n = 0;
	struct thr_op *op;

	pthread_mutex_lock(&t->lock);
	while (n < max && (op = t->done_head)) {
		t->done_head = op->next;
		if (!t->done_head)
			t->done_tail = NULL;
		out[n].cookie = op->io.cookie;
		out[n].result = op->result;
		op->next = t->free;
		t->free = op;
		t->busy--;
		n++;
	}
	efd_level_update(&t->done, t->done_head != NULL);
	pthread_mutex_unlock(&t->lock);
	return n;
}

static int thr_flush_sync(struct disk_engine *e)
{
	return disk_file_flush(thr_of(e)->f);
}

static void thr_free(struct disk_threads *t)
{
	if (t->e.notify_fd >= 0)
		close(t->e.notify_fd);
	pthread_cond_destroy(&t->work);
	pthread_mutex_destroy(&t->lock);
	free(t->ops);
	free(t);
}

static void thr_destroy(struct disk_engine *e)
{
	struct disk_threads *t = thr_of(e);
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->work);
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < t->nr_workers; i++)
		pthread_join(t->workers[i], NULL);
	disk_file_close(t->f);
	free(t->f);
	thr_free(t);
}

static const struct disk_engine_ops thr_ops = {
	.name = "threads",
	.submit = thr_submit,
	.commit = thr_commit,
	.reap = thr_reap,
	.flush_sync = thr_flush_sync,
	.destroy = thr_destroy,
};

static int thr_start_workers(struct disk_threads *t, unsigned int n)
{
	char name[16];
	int ret;

	for (t->nr_workers = 0; t->nr_workers < n; t->nr_workers++) {
		ret = pthread_create(&t->workers[t->nr_workers], NULL, thr_worker, t);
		if (ret)
			return -ret;
		snprintf(name, sizeof(name), "disk-w%u", t->nr_workers);
		pthread_setname_np(t->workers[t->nr_workers], name);
	}
	return 0;
}

int disk_threads_create(struct disk_engine **out, struct disk_file *f, unsigned int depth)
{
	struct disk_threads *t = calloc(1, sizeof(*t));
	unsigned int i;
	int ret;

	if (!t)
		return -ENOMEM;
	t->e.ops = &thr_ops;
	t->f = f;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->work, NULL);
	t->e.notify_fd = t->done.fd = efd_open();
	t->ops = calloc(depth ? depth : 1, sizeof(*t->ops));
	if (t->e.notify_fd < 0 || !t->ops) {
		ret = t->e.notify_fd < 0 ? t->e.notify_fd : -ENOMEM;
		thr_free(t);
		return ret;
	}
	for (i = depth; i-- > 0;) {
		t->ops[i].next = t->free;
		t->free = &t->ops[i];
	}
	ret = thr_start_workers(t, MIN(depth, THREADS_MAX_WORKERS));
	if (ret) {
		pthread_mutex_lock(&t->lock);
		t->stopping = true;
		pthread_cond_broadcast(&t->work);
		pthread_mutex_unlock(&t->lock);
		while (t->nr_workers--)
			pthread_join(t->workers[t->nr_workers], NULL);
		thr_free(t);
		return ret;
	}
	*out = &t->e;
	return 0;
}
