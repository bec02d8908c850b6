// SPDX-License-Identifier: MIT
/*
 * The disk engines' conformance suite: the same cases against every
 * engine, through the public disk layer (disk/disk.h) only:
 *   memory           disk_open_mem()
 *   threads          disk_open(), DISK_ENGINE_THREADS, on a temp file
 *   io_uring         disk_open(), DISK_ENGINE_IO_URING, on a temp file
 *   fault(threads)   the fault filter with no rules over each file engine:
 *   fault(io_uring)  it must behave exactly like the engine underneath
 *   nbd              disk_open() of an nbdkit memory export on a unix
 *                    socket (nbdkit started per case; tests/peer/nbd_server.c),
 *                    or of a file export where a case needs known bytes
 * and the fault filter's own rules, trace and holding on top of each.
 *
 * Every wait is bounded (WAIT_MS): a broken engine fails, never hangs.
 * A case that cannot run here (no io_uring, no cachestat(2), a file
 * system that writes back at once) says so in a "SKIP ..." line on
 * stderr and is reported skipped by cmocka, never passed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/fault.h"
#include "disk/mem.h"
#include "lib/util.h"
#include "tests/driver/proc.h"
#include "tests/peer/nbd_server.h"

#define DISK_SIZE	(8ULL << 20)
#define DEPTH		64
#define QD		32
#define MAX_OPS		64
#define WAIT_MS		10000	/* only a broken engine takes this long */
#define QUIET_MS	50	/* how long a held completion must stay unseen */
#define QUIET_ROUNDS	500	/* test_notify_quiet: a late signal shows in a few */
#define GAP		16	/* canary bytes around every iovec */
#define CANARY		0xa5
#define MANY_IOVS	1100	/* past IOV_MAX (1024): the engine must split */
#define MIB		(1ULL << 20)
#define KIB		1024ULL
#define OPBIT(op)	(1u << (op))

/* Line-initial "SKIP ", as scripts/test.sh collects them from the logs. */
#define SKIP_TAIL	" -- this case did NOT run and is NOT counted as passed\n"

#ifndef __NR_cachestat
#define __NR_cachestat	451
#endif

/* ---- the engines under test ----------------------------------------------- */

struct kind {
	const char *name;		/* and, but for direct, the disk's props.engine */
	bool file;
	enum disk_engine_kind engine;
	bool fault;			/* a fault filter with no rules on top */
	bool direct;			/* O_DIRECT (disk_conf.direct) */
	bool nbd;			/* an nbdkit memory export */
};

static struct kind kinds[] = {
	{ "memory", false, DISK_ENGINE_DEFAULT, false, false, false },
	{ "threads", true, DISK_ENGINE_THREADS, false, false, false },
	{ "io_uring", true, DISK_ENGINE_IO_URING, false, false, false },
	{ "fault(threads)", true, DISK_ENGINE_THREADS, true, false, false },
	{ "fault(io_uring)", true, DISK_ENGINE_IO_URING, true, false, false },
	{ "direct(threads)", true, DISK_ENGINE_THREADS, false, true, false },
	{ "direct(io_uring)", true, DISK_ENGINE_IO_URING, false, true, false },
	{ "nbd", false, DISK_ENGINE_DEFAULT, false, false, true },
};

static bool uring_ok;

/* One disk under test and what it should hold. */
struct t {
	const struct kind *k;
	const char *test;
	struct disk *d;
	char path[PATH_MAX];		/* the file (unlinked once open) */
	int fd;				/* the file, read-only, for checks; -1 for memory */
	uint64_t start;			/* the window in the file */
	uint64_t size;			/* the disk */
	uint8_t *model;			/* what the disk should read back */
	struct nbd_server srv;		/* nbd: its server */
};

struct opts {
	uint64_t size;			/* the disk, or the file with a window */
	bool ro;
	bool fill;			/* the file holds pattern(), not zeros */
	bool has_range;
	uint64_t start, len;
	const struct disk_props *mem_props;	/* memory: disk_open_mem_props() */
};

static uint64_t rnd_state;

static void rnd_seed(uint64_t s)
{
	rnd_state = s * 0x9e3779b97f4a7c15ULL + 1;
}

/* xorshift64*: the same sequence on every run, so a failure repeats. */
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dULL;
}

static void rnd_fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 32);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 9) + 1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* $TMPDIR, else /var/tmp (a disk more often than /tmp), else /tmp. */
static const char *tmp_dir(void)
{
	const char *dir = getenv("TMPDIR");

	if (dir && *dir)
		return dir;
	return access("/var/tmp", W_OK) == 0 ? "/var/tmp" : "/tmp";
}

/* The file of o->size at t->path, or a new temp file when t->path is empty. */
static void make_file(struct t *t, const struct opts *o)
{
	uint8_t *buf;
	uint64_t i;
	int fd;

	if (t->path[0]) {
		fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	} else {
		snprintf(t->path, sizeof(t->path), "%s/tvmm-engines-XXXXXX", tmp_dir());
		fd = mkstemp(t->path);
	}
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, o->size), 0);
	if (o->fill) {
		buf = malloc(o->size);
		assert_non_null(buf);
		for (i = 0; i < o->size; i++)
			buf[i] = pattern(i);
		assert_int_equal(pwrite(fd, buf, o->size, 0), (ssize_t)o->size);
		free(buf);
	}
	close(fd);
}

static void open_file_disk(struct t *t, const struct opts *o)
{
	struct disk_conf c = {
		.path = t->path,
		.ro = o->ro,
		.direct = t->k->direct,
		.logical_block = 512,
		.physical_block = 512,
		.has_range = o->has_range,
		.range_start = o->start,
		.range_len = o->len,
		.engine = t->k->engine,
		.depth = DEPTH,
		.who = "test",
	};
	int ret;

	make_file(t, o);
	ret = disk_open(&t->d, &c);
	t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
	/* Open, it needs no name: a failed case leaves no file behind. */
	unlink(t->path);
	assert_int_equal(ret, 0);
	assert_true(t->fd >= 0);
	t->start = o->has_range ? o->start : 0;
}

/*
 * An nbdkit export of o->size on a unix socket: memory (zeros, as the
 * model starts), or with o->fill a file of pattern() (file plugin), kept
 * open in t->fd for checks as the file kinds do; ro opens it read-only
 * (the export stays writable).
 */
static void open_nbd_disk(struct t *t, const struct opts *o)
{
	char size[32], file[PATH_MAX + 8];
	const char *mem[] = { "memory", size, NULL }, *on_file[] = { "file", file, NULL };
	struct disk_conf c = {
		.ro = o->ro,
		.logical_block = 512,
		.physical_block = 512,
		.has_range = o->has_range,
		.range_start = o->start,
		.range_len = o->len,
		.depth = DEPTH,
		.who = "test",
		.reconnect_ms = 50,
	};

	snprintf(size, sizeof(size), "size=%llu", (unsigned long long)o->size);
	nbd_server_init(&t->srv, false);
	if (o->fill) {
		/* In the server's temp dir: it goes with the server, however the case ends. */
		nbd_server_path(&t->srv, "disk.img", t->path, sizeof(t->path));
		make_file(t, o);
		snprintf(file, sizeof(file), "file=%s", t->path);
		t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
		assert_true(t->fd >= 0);
	}
	nbd_server_start(&t->srv, o->fill ? on_file : mem);
	c.path = t->srv.uri;
	assert_int_equal(disk_open(&t->d, &c), 0);
	t->start = o->has_range ? o->start : 0;
}

/* The disk of the engine kind in *state; a missing io_uring skips, loudly. */
static struct t *t_new(void **state, const struct opts *o, const char *test)
{
	const struct kind *k = *state;
	struct t *t;

	if (k->engine == DISK_ENGINE_IO_URING && !uring_ok) {
		fprintf(stderr, "SKIP test_disk_engines: %s (%s): io_uring refused by this kernel"
			SKIP_TAIL, test, k->name);
		skip();
	}
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->k = k;
	t->test = test;
	t->fd = -1;
	if (k->file)
		open_file_disk(t, o);
	else if (k->nbd)
		open_nbd_disk(t, o);
	else if (o->mem_props)
		assert_int_equal(disk_open_mem_props(&t->d, o->mem_props), 0);
	else
		assert_int_equal(disk_open_mem(&t->d, o->size, o->ro), 0);
	if (k->fault)
		assert_int_equal(disk_fault_wrap(t->d, NULL, 0), 0);
	t->size = disk_props(t->d)->size;
	t->model = calloc(1, t->size);
	assert_non_null(t->model);
	if (o->fill && (k->file || k->nbd))
		assert_int_equal(pread(t->fd, t->model, t->size, t->start), (ssize_t)t->size);
	return t;
}

static struct t *t_plain(void **state, const char *test)
{
	const struct opts o = { .size = DISK_SIZE };

	return t_new(state, &o, test);
}

static void t_free(struct t *t)
{
	disk_close(t->d);
	if (t->k->nbd)
		nbd_server_stop(&t->srv);
	if (t->fd >= 0)
		close(t->fd);
	free(t->model);
	free(t);
}

/* Cannot be run here: say why where it is seen, and be reported skipped. */
static void t_skip(struct t *t, const char *why)
{
	fprintf(stderr, "SKIP test_disk_engines: %s (%s): %s" SKIP_TAIL, t->test, t->k->name, why);
	t_free(t);
	skip();
}

/* ---- scatter lists -------------------------------------------------------- */

enum sg_shape { SG_EVEN, SG_RANDOM, SG_EMPTIES };

/* len bytes in cnt pieces, each between canaries, none adjacent to the next. */
struct sg {
	uint8_t *mem;
	size_t mem_len;
	struct iovec *iov;
	unsigned int cnt;
	uint64_t len;
};

static uint64_t sg_piece(uint64_t left, unsigned int rest, enum sg_shape shape)
{
	uint64_t avg = left / (rest + 1), n;

	if (!rest)
		return left;
	if (shape == SG_EVEN)
		return avg;
	if (shape == SG_EMPTIES && rnd() % 8 == 0)
		return 0;
	n = avg ? 1 + rnd() % (2 * avg) : 0;
	return n < left ? n : left;
}

static void sg_make(struct sg *s, uint64_t len, unsigned int cnt, enum sg_shape shape)
{
	uint64_t left = len, pos = GAP, n;
	unsigned int i;

	s->len = len;
	s->cnt = cnt;
	s->iov = calloc(cnt, sizeof(*s->iov));
	s->mem_len = len + (uint64_t)(cnt + 1) * GAP;
	s->mem = malloc(s->mem_len);
	assert_true(s->iov && s->mem);
	memset(s->mem, CANARY, s->mem_len);
	for (i = 0; i < cnt; i++) {
		n = sg_piece(left, cnt - i - 1, shape);
		s->iov[i].iov_base = s->mem + pos;
		s->iov[i].iov_len = n;
		pos += n + GAP;
		left -= n;
	}
}

static void sg_copy(struct sg *s, uint8_t *lin, bool into_sg)
{
	unsigned int i;

	for (i = 0; i < s->cnt; i++) {
		if (into_sg)
			memcpy(s->iov[i].iov_base, lin, s->iov[i].iov_len);
		else
			memcpy(lin, s->iov[i].iov_base, s->iov[i].iov_len);
		lin += s->iov[i].iov_len;
	}
}

/* No engine may write outside the iovecs it was given. */
static void sg_check_canaries(const struct sg *s)
{
	uint8_t *p = s->mem;
	unsigned int i;

	for (i = 0; i <= s->cnt; i++) {
		uint8_t *end = i < s->cnt ? s->iov[i].iov_base : s->mem + s->mem_len;

		for (; p < end; p++)
			if (*p != CANARY)
				fail_msg("byte %td outside the iovecs was written (before iovec %u of %u)",
					 p - s->mem, i, s->cnt);
		if (i < s->cnt)
			p += s->iov[i].iov_len;
	}
}

static void sg_free(struct sg *s)
{
	free(s->iov);
	free(s->mem);
	memset(s, 0, sizeof(*s));
}

/* ---- submitting and reaping ----------------------------------------------- */

enum op_state { OP_NEW, OP_IN_FLIGHT, OP_DONE_NOW, OP_REAPED };

struct op {
	struct disk_io io;
	struct sg sg;
	uint8_t *data;		/* WRITE: what was written; READ: what came back */
	enum op_state state;
	int result;
};

struct batch {
	struct op op[MAX_OPS];
	unsigned int n, pending, submitted;
};

/* Cookies nothing could mistake for an index or each other: 0 and ~0 too. */
static uint64_t cookie_of(unsigned int i)
{
	if (i < 2)
		return i ? UINT64_MAX : 0;
	return i * 0x9e3779b97f4a7c15ULL;
}

static struct op *batch_add(struct batch *b, const struct disk_io *io)
{
	struct op *op;

	assert_true(b->n < MAX_OPS);
	op = &b->op[b->n];
	memset(op, 0, sizeof(*op));
	op->io = *io;
	op->io.cookie = cookie_of(b->n++);
	return op;
}

/* A READ or WRITE of random data in cnt pieces of the given shape. */
static struct op *batch_rw(struct batch *b, enum disk_op dop, uint64_t off, uint64_t len,
			   unsigned int cnt, enum sg_shape shape, uint32_t flags)
{
	const struct disk_io io = { .op = dop, .flags = flags, .offset = off, .len = len };
	struct op *op = batch_add(b, &io);

	sg_make(&op->sg, len, cnt, shape);
	op->data = malloc(len);
	assert_non_null(op->data);
	if (dop == DISK_OP_WRITE) {
		rnd_fill(op->data, len);
		sg_copy(&op->sg, op->data, true);
	}
	op->io.iov = op->sg.iov;
	op->io.cnt = cnt;
	return op;
}

static void batch_free(struct batch *b)
{
	unsigned int i;

	for (i = 0; i < b->n; i++) {
		sg_free(&b->op[i].sg);
		free(b->op[i].data);
	}
	b->n = 0;
}

static void batch_submit(struct t *t, struct batch *b)
{
	struct op *op;
	unsigned int i;
	int ret;

	for (i = 0; i < b->n; i++) {
		op = &b->op[i];
		if (op->state != OP_NEW)
			continue;
		ret = disk_submit(t->d, &op->io);
		if (ret == DISK_SUBMITTED) {
			op->state = OP_IN_FLIGHT;
			b->pending++;
			b->submitted++;
		} else {
			assert_true(ret <= 0);
			op->state = OP_DONE_NOW;
			op->result = ret;
		}
		assert_int_equal(disk_in_flight(t->d), b->pending);
	}
	disk_commit(t->d);
}

/* A completion: a cookie of this batch, in flight, seen for the first time. */
static void batch_complete(struct t *t, struct batch *b, const struct disk_done *dd)
{
	unsigned int i;

	for (i = 0; i < b->n; i++) {
		if (b->op[i].io.cookie != dd->cookie)
			continue;
		if (b->op[i].state == OP_REAPED)
			fail_msg("%s: cookie %#llx completed twice", t->k->name,
				 (unsigned long long)dd->cookie);
		if (b->op[i].state == OP_DONE_NOW)
			fail_msg("%s: cookie %#llx answered at submit and reaped too",
				 t->k->name, (unsigned long long)dd->cookie);
		assert_int_equal(b->op[i].state, OP_IN_FLIGHT);
		b->op[i].state = OP_REAPED;
		b->op[i].result = dd->result;
		b->pending--;
		return;
	}
	fail_msg("%s: reaped cookie %#llx, which was never submitted", t->k->name,
		 (unsigned long long)dd->cookie);
}

/* Wait (bounded) for the notify fd; false when the deadline passed. */
static bool wait_notify(struct t *t, int64_t deadline)
{
	int fd = disk_notify_fd(t->d);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t left;
	int ret;

	if (fd < 0)
		fail_msg("%u op(s) in flight, but the notify fd is -1", disk_in_flight(t->d));
	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		ret = poll(&p, 1, (int)left);
		if (ret > 0)
			return true;
		if (ret < 0 && errno != EINTR)
			fail_msg("poll on the notify fd: %s", strerror(errno));
	}
}

/* Reap until done(t, b) or pending is 0; fails after WAIT_MS. */
static void batch_reap_until(struct t *t, struct batch *b,
			     bool (*done)(struct t *, struct batch *))
{
	int64_t deadline = now_ms() + WAIT_MS;
	struct disk_done dd[16];
	unsigned int k, i;

	while (b->pending && !(done && done(t, b))) {
		k = disk_reap(t->d, dd, ARRAY_SIZE(dd));
		assert_true(k <= ARRAY_SIZE(dd));
		for (i = 0; i < k; i++)
			batch_complete(t, b, &dd[i]);
		assert_int_equal(disk_in_flight(t->d), b->pending);
		/* That reap may have made done() true (a completion it held back). */
		if (!k && done && done(t, b))
			break;
		if (!k && !wait_notify(t, deadline))
			fail_msg("%s: %u op(s) still in flight after %d ms", t->k->name,
				 b->pending, WAIT_MS);
	}
}

static void batch_wait(struct t *t, struct batch *b)
{
	struct disk_done dd[4];

	batch_reap_until(t, b, NULL);
	/* Nothing in flight: a reap must find nothing (no extra completion). */
	assert_int_equal(disk_reap(t->d, dd, ARRAY_SIZE(dd)), 0);
	assert_int_equal(disk_in_flight(t->d), 0);
}

/* What a successful op means for the model; reads must match it. */
static void op_apply(struct t *t, struct op *op)
{
	const struct disk_io *io = &op->io;

	switch (io->op) {
	case DISK_OP_WRITE:
		memcpy(t->model + io->offset, op->data, io->len);
		break;
	case DISK_OP_READ:
		sg_check_canaries(&op->sg);
		sg_copy(&op->sg, op->data, false);
		if (memcmp(op->data, t->model + io->offset, io->len))
			fail_msg("%s: read at %llu+%llu (%u iovecs) differs from what was written",
				 t->k->name, (unsigned long long)io->offset,
				 (unsigned long long)io->len, io->cnt);
		break;
	case DISK_OP_DISCARD:
	case DISK_OP_WRITE_ZEROES:
		memset(t->model + io->offset, 0, io->len);
		break;
	case DISK_OP_FLUSH:
		break;
	}
}

/* Submit all, wait for all; every op must succeed (ops must not overlap). */
static void batch_run(struct t *t, struct batch *b)
{
	unsigned int i;

	batch_submit(t, b);
	batch_wait(t, b);
	for (i = 0; i < b->n; i++) {
		if (b->op[i].result)
			fail_msg("%s: op %d at %llu+%llu failed: %s", t->k->name, b->op[i].io.op,
				 (unsigned long long)b->op[i].io.offset,
				 (unsigned long long)b->op[i].io.len, strerror(-b->op[i].result));
		op_apply(t, &b->op[i]);
	}
}

/* One op, waited for; its result.  A successful one updates the model. */
static int t_do(struct t *t, enum disk_op dop, uint64_t off, uint64_t len, uint32_t flags)
{
	struct batch b = { .n = 0 };
	struct op *op;
	int ret;

	if (dop == DISK_OP_READ || dop == DISK_OP_WRITE) {
		op = batch_rw(&b, dop, off, len, 1 + rnd() % 4, SG_RANDOM, flags);
	} else {
		const struct disk_io io = { .op = dop, .flags = flags, .offset = off, .len = len };

		op = batch_add(&b, &io);
	}
	batch_submit(t, &b);
	batch_wait(t, &b);
	ret = op->result;
	if (!ret)
		op_apply(t, op);
	batch_free(&b);
	return ret;
}

/* The disk reads back the model, 1 MiB at a time. */
static void t_verify(struct t *t, uint64_t off, uint64_t len)
{
	uint64_t n;

	for (; len; off += n, len -= n) {
		n = len < MIB ? len : MIB;
		assert_int_equal(t_do(t, DISK_OP_READ, off, n, 0), 0);
	}
}

static bool range_is(const uint8_t *p, uint8_t v, uint64_t len)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- the file underneath -------------------------------------------------- */

struct t_cachestat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static int cachestat_of(int fd, uint64_t off, uint64_t len, struct t_cachestat *cs)
{
	const struct { uint64_t off, len; } r = { off, len };

	memset(cs, 0, sizeof(*cs));
	return syscall(__NR_cachestat, fd, &r, cs, 0) < 0 ? -errno : 0;
}

static unsigned long fs_type(struct t *t)
{
	struct statfs sf;

	assert_int_equal(fstatfs(t->fd, &sf), 0);
	return (unsigned long)sf.f_type;
}

/* Page-cache checks need cachestat(2) and a file system that writes back. */
static void need_cachestat(struct t *t)
{
	struct t_cachestat cs;
	int ret;

	if (fs_type(t) == TMPFS_MAGIC)
		t_skip(t, "the file is on tmpfs, which never writes back: set TMPDIR to a disk");
	ret = cachestat_of(t->fd, 0, 512, &cs);
	if (ret == -ENOSYS)
		t_skip(t, "cachestat(2) is missing (Linux >= 6.5): durability not checked");
	assert_int_equal(ret, 0);
}

/* Dirty pages in the range: proof the check below can see dirt at all. */
static void need_dirty(struct t *t, uint64_t off, uint64_t len)
{
	struct t_cachestat cs;

	assert_int_equal(cachestat_of(t->fd, t->start + off, len, &cs), 0);
	if (!cs.nr_dirty)
		t_skip(t, "a plain write left no dirty page: the host wrote back at once, "
			  "so a clean page would prove nothing");
}

static void assert_clean(struct t *t, uint64_t off, uint64_t len, const char *after)
{
	struct t_cachestat cs;

	assert_int_equal(cachestat_of(t->fd, t->start + off, len, &cs), 0);
	if (cs.nr_dirty || cs.nr_writeback)
		fail_msg("%s: after %s, %llu dirty and %llu writeback page(s) in file bytes %llu+%llu",
			 t->k->name, after, (unsigned long long)cs.nr_dirty,
			 (unsigned long long)cs.nr_writeback,
			 (unsigned long long)(t->start + off), (unsigned long long)len);
}

static long long file_blocks(struct t *t)
{
	struct stat st;

	assert_int_equal(fstat(t->fd, &st), 0);
	return (long long)st.st_blocks;
}

/* File systems whose regular files punch holes: an engine there must. */
static bool fs_punches(unsigned long type)
{
	return type == EXT4_SUPER_MAGIC || type == XFS_SUPER_MAGIC ||
	       type == BTRFS_SUPER_MAGIC || type == TMPFS_MAGIC;
}

static void need_prop(struct t *t, bool prop, const char *name)
{
	char why[160];

	if (prop)
		return;
	if (t->k->nbd) {
		snprintf(why, sizeof(why), "props.%s is false: the NBD server does not offer it",
			 name);
		t_skip(t, why);
	}
	if (fs_punches(fs_type(t)))
		fail_msg("%s: props.%s is false on a file system that punches holes (statfs type %#lx)",
			 t->k->name, name, fs_type(t));
	snprintf(why, sizeof(why), "props.%s is false on this file system (statfs type %#lx)",
		 name, fs_type(t));
	t_skip(t, why);
}

/* Allocated, durable random data over [0, len), then a FLUSH. */
static void fill_flushed(struct t *t, uint64_t len)
{
	uint64_t off;

	for (off = 0; off < len; off += MIB)
		assert_int_equal(t_do(t, DISK_OP_WRITE, off, MIB, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, 0), 0);
}

/* ---- the fault filter's trace --------------------------------------------- */

struct ev {
	enum disk_fault_event ev;
	enum disk_op op;
	uint64_t offset, len, cookie;
	int result;
};

struct trace {
	struct ev ev[256];
	unsigned int n;
};

static void trace_fn(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		     uint64_t cookie, int result)
{
	struct trace *tr = opaque;

	if (tr->n < ARRAY_SIZE(tr->ev))
		tr->ev[tr->n++] = (struct ev){ ev, io->op, io->offset, io->len, cookie, result };
}

static unsigned int trace_count(const struct trace *tr, enum disk_fault_event ev,
				enum disk_op op)
{
	unsigned int i, n = 0;

	for (i = 0; i < tr->n; i++)
		n += tr->ev[i].ev == ev && tr->ev[i].op == op;
	return n;
}

/* A filter with these rules and a trace on top of t's disk. */
static void t_fault(struct t *t, const struct disk_fault_rule *rules, unsigned int n,
		    struct trace *tr)
{
	assert_int_equal(disk_fault_wrap(t->d, rules, n), 0);
	if (tr)
		disk_fault_set_trace(t->d, trace_fn, tr);
}

/* ---- cases: every engine -------------------------------------------------- */

/*
 * Fails if the disk does not say what it is: its size, blocks, engine
 * name (the filter's "fault(...)" included), or a notify fd that is
 * missing where ops can be in flight (-1 only for memory).
 */
static void test_props(void **state)
{
	struct t *t = t_plain(state, __func__);
	const struct disk_props *p = disk_props(t->d);

	assert_int_equal(p->size, DISK_SIZE);
	assert_int_equal(p->logical_block, 512);
	assert_int_equal(p->physical_block, 512);
	assert_false(p->ro);
	assert_false(p->is_blockdev);
	assert_non_null(p->engine);
	if (t->k->direct) {
		assert_string_equal(p->engine, t->k->engine == DISK_ENGINE_THREADS ? "threads" :
				    "io_uring");
		assert_true(p->direct);
		assert_true(p->dio_mem_align >= 1 && p->dio_off_align >= 512);
	} else {
		assert_string_equal(p->engine, t->k->name);
		assert_false(p->direct);
	}
	if (t->k->file) {
		assert_true(p->fd >= 0);
		assert_true(disk_notify_fd(t->d) >= 0);
	} else if (t->k->nbd) {
		assert_int_equal(p->fd, -1);
		assert_int_equal(p->sock_family, AF_UNIX);
		assert_true(disk_notify_fd(t->d) >= 0);
	} else {
		assert_int_equal(p->fd, -1);
		assert_true(p->discard && p->write_zeroes && p->zeroes_unmap);
		assert_int_equal(disk_notify_fd(t->d), -1);
	}
	if (t->k->fault)
		assert_true(disk_notify_fd(t->d) >= 0);
	assert_int_equal(disk_in_flight(t->d), 0);
	assert_int_equal(disk_flush_sync(t->d), 0);
	t_free(t);
}

/*
 * One op at a time, 300 of them: random offsets, lengths and iovec
 * splits, some DISK_F_ALONE (an engine may run those on the caller's
 * thread) and some FUA.  Fails if bytes are lost or moved across iovec
 * boundaries, land at the wrong offset, or are written outside the
 * iovecs (canaries), on either the synchronous or the submitted path.
 */
static void test_rw_qd1(void **state)
{
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	uint64_t len, off;
	uint32_t flags;
	unsigned int i;

	rnd_seed(1);
	for (i = 0; i < 300; i++) {
		len = (1 + rnd() % 128) * 512;
		off = rnd() % ((t->size - len) / 512 + 1) * 512;
		flags = rnd() % 4 == 0 ? DISK_F_ALONE : 0;
		if (rnd() % 2) {
			flags |= rnd() % 4 == 0 ? DISK_F_FUA : 0;
			batch_rw(&b, DISK_OP_WRITE, off, len, 1 + rnd() % 8, SG_RANDOM, flags);
		} else {
			batch_rw(&b, DISK_OP_READ, off, len, 1 + rnd() % 8, SG_RANDOM, flags);
		}
		batch_run(t, &b);
		batch_free(&b);
		b = (struct batch){ .n = 0 };
	}
	t_verify(t, 0, t->size);
	t_free(t);
}

/* 32 ops, each in its own 256 KiB slot of the disk: none overlaps another. */
static void qd32_round(struct t *t, unsigned int round)
{
	struct batch b = { .n = 0 };
	uint64_t slot = t->size / QD, len, off;
	enum disk_op dop;
	unsigned int i;

	for (i = 0; i < QD; i++) {
		len = (1 + rnd() % 64) * 512;
		off = i * slot + rnd() % ((slot - len) / 512 + 1) * 512;
		/* Rounds: all writes, all reads, then reads and writes mixed. */
		dop = round == 0 || (round >= 2 && i % 2) ? DISK_OP_WRITE : DISK_OP_READ;
		batch_rw(&b, dop, off, len, 1 + rnd() % 16, i % 3 ? SG_RANDOM : SG_EMPTIES, 0);
	}
	batch_run(t, &b);
	fprintf(stderr, "qd32 (%s) round %u: %u of %u ops in flight at once\n", t->k->name, round,
		b.submitted, QD);
	/* A file engine that answers everything at submit never ran this case. */
	if (t->k->file || t->k->nbd)
		assert_true(b.submitted > 0);
	batch_free(&b);
}

/*
 * 32 ops in flight, reaped by polling the notify fd.  Fails if a
 * completion is lost (the wait times out), duplicated, carries a wrong
 * cookie, if in_flight does not return to 0, or if concurrent ops mix
 * up their data.
 */
static void test_rw_qd32(void **state)
{
	struct t *t = t_plain(state, __func__);
	unsigned int round;

	rnd_seed(2);
	for (round = 0; round < 6; round++)
		qd32_round(t, round);
	t_verify(t, 0, t->size);
	t_free(t);
}

/*
 * More iovecs than IOV_MAX (1024): the engine must split the transfer.
 * Even 512-byte pieces, irregular pieces (some empty), alone and two
 * in flight, plain, FUA and ALONE.  Fails if an engine hands the kernel
 * more than it takes (EINVAL), drops the tail past the 1024th iovec, or
 * resumes a split transfer at the wrong byte.
 */
static void test_rw_many_iovecs(void **state)
{
	struct t *t = t_plain(state, __func__);
	const uint64_t len = MANY_IOVS * 512ULL;
	static const uint32_t flags[] = { 0, DISK_F_FUA, DISK_F_ALONE, DISK_F_FUA | DISK_F_ALONE };
	struct batch b = { .n = 0 };
	unsigned int i;

	rnd_seed(3);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		batch_rw(&b, DISK_OP_WRITE, i * MIB, len, MANY_IOVS, i % 2 ? SG_EMPTIES : SG_EVEN,
			 flags[i]);
		batch_run(t, &b);
		batch_free(&b);
		batch_rw(&b, DISK_OP_READ, i * MIB, len, MANY_IOVS, SG_EVEN,
			 flags[i] & DISK_F_ALONE);
		batch_run(t, &b);
		batch_free(&b);
		batch_rw(&b, DISK_OP_READ, i * MIB, len, 1500, SG_EMPTIES, 0);
		batch_run(t, &b);
		batch_free(&b);
	}
	/* Two at once: a many-iovec write and a many-iovec read elsewhere. */
	batch_rw(&b, DISK_OP_WRITE, 5 * MIB, len, MANY_IOVS, SG_RANDOM, 0);
	batch_rw(&b, DISK_OP_READ, 0, len, MANY_IOVS, SG_RANDOM, 0);
	batch_run(t, &b);
	batch_free(&b);
	t_verify(t, 0, t->size);
	t_free(t);
}

/*
 * DISCARD of 1 MiB inside allocated data: the range reads back zeros
 * (memory zeroes it, a file gets a hole), the bytes either side are
 * untouched, and a file gives the space back (st_blocks drops).  Fails
 * if an engine ignores DISCARD, punches the wrong range, or rounds it
 * out over its neighbours; and, on a file system that punches holes,
 * if the engine says it cannot discard.
 */
static void test_discard(void **state)
{
	struct t *t = t_plain(state, __func__);
	long long before = 0;

	rnd_seed(4);
	if (t->k->file || t->k->nbd)
		need_prop(t, disk_props(t->d)->discard, "discard");
	fill_flushed(t, t->size);
	if (t->k->file)
		before = file_blocks(t);
	assert_int_equal(t_do(t, DISK_OP_DISCARD, 3 * MIB, MIB, 0), 0);
	if (t->k->file && file_blocks(t) > before - 1024)
		fail_msg("%s: DISCARD of 1 MiB: st_blocks %lld -> %lld", t->k->name, before,
			 file_blocks(t));
	/* Not 4 KiB-aligned: the partial blocks at the edges are zeroed, not more. */
	assert_int_equal(t_do(t, DISK_OP_DISCARD, 5 * MIB + 1536, 3 * 512, 0), 0);
	assert_true(range_is(t->model + 3 * MIB, 0, MIB));
	t_verify(t, 0, t->size);
	t_free(t);
}

/*
 * WRITE_ZEROES with and without DISK_F_UNMAP, page-aligned and not:
 * the range reads zeros, neighbours keep their data, and UNMAP on a file
 * deallocates (st_blocks drops).  Fails if an engine leaves data in the
 * range, zeroes past it, or ignores UNMAP where the props offer it.
 */
static void test_write_zeroes(void **state)
{
	struct t *t = t_plain(state, __func__);
	long long before = 0;

	rnd_seed(5);
	if (t->k->file || t->k->nbd)
		need_prop(t, disk_props(t->d)->write_zeroes, "write_zeroes");
	fill_flushed(t, t->size);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, MIB + 512, 1536, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, 2 * MIB, MIB, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, 4 * MIB - 512, 2048, DISK_F_UNMAP), 0);
	if (t->k->file || t->k->nbd)
		need_prop(t, disk_props(t->d)->zeroes_unmap, "zeroes_unmap");
	if (t->k->file)
		before = file_blocks(t);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, 5 * MIB, MIB, DISK_F_UNMAP), 0);
	if (t->k->file && file_blocks(t) > before - 1024)
		fail_msg("%s: WRITE_ZEROES|UNMAP of 1 MiB: st_blocks %lld -> %lld", t->k->name,
			 before, file_blocks(t));
	assert_true(range_is(t->model + 5 * MIB, 0, MIB));
	t_verify(t, 0, t->size);
	t_free(t);
}

/* An op for the tables of refused ones. */
#define IO(o, f, off, l, v, c) \
	{ .op = (o), .flags = (f), .offset = (off), .len = (l), .iov = (v), .cnt = (c) }
#define ZIO(o, f, off, l)	IO(o, f, off, l, NULL, 0)

struct bad_op {
	const char *what;
	struct disk_io io;
	int expect;
};

/* Reap and drop whatever is in flight (bounded), after a failure. */
static void drain(struct t *t)
{
	int64_t deadline = now_ms() + WAIT_MS;
	struct disk_done dd[16];

	disk_commit(t->d);
	while (disk_in_flight(t->d) && now_ms() < deadline)
		if (!disk_reap(t->d, dd, ARRAY_SIZE(dd)))
			wait_notify(t, deadline);
}

/* Submit each; each must be refused with its error before any engine sees it. */
static void submit_refused(struct t *t, const struct bad_op *bad, unsigned int n,
			   const struct trace *tr)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = disk_submit(t->d, &bad[i].io);
		/* Its iovecs live on the caller's stack: finish it before failing. */
		if (ret == DISK_SUBMITTED)
			drain(t);
		if (ret != bad[i].expect)
			fail_msg("%s: %s: got %d (%s), want %d (%s)", t->k->name, bad[i].what, ret,
				 ret <= 0 ? strerror(-ret) : "DISK_SUBMITTED", bad[i].expect,
				 strerror(-bad[i].expect));
		assert_int_equal(disk_in_flight(t->d), 0);
		if (tr->n)
			fail_msg("%s: %s: the engine saw it (%u trace events)", t->k->name,
				 bad[i].what, tr->n);
	}
}

/*
 * Ops the layer must refuse, each before the engine sees it (the fault
 * filter's trace stays empty): outside the disk (overflowing uint64
 * too), unaligned, empty, iovecs that do not add up (wrapping too),
 * flags on ops they mean nothing to, unknown ops.  Fails if any such op
 * reaches an engine, which would then read or write outside the disk.
 */
static void test_refused(void **state)
{
	struct t *t = t_plain(state, __func__);
	static uint8_t buf[1024];
	const uint64_t sz = t->size, top = UINT64_MAX - 511;
	const struct iovec v512 = { buf, 512 }, v1k = { buf, 1024 };
	const struct iovec wrap[2] = { { buf, 1024 }, { buf, SIZE_MAX - 511 } };
	const struct bad_op bad[] = {
		{ "READ at the size", IO(DISK_OP_READ, 0, sz, 512, &v512, 1), -ERANGE },
		{ "READ across the end", IO(DISK_OP_READ, 0, sz - 512, 1024, &v1k, 1), -ERANGE },
		{ "READ wrapping uint64", IO(DISK_OP_READ, 0, top, 1024, &v1k, 1), -ERANGE },
		{ "WRITE at 2^64-512", IO(DISK_OP_WRITE, 0, top, 512, &v512, 1), -ERANGE },
		{ "DISCARD across the end", ZIO(DISK_OP_DISCARD, 0, sz - 512, 1024), -ERANGE },
		{ "WRITE_ZEROES at the size", ZIO(DISK_OP_WRITE_ZEROES, 0, sz, 512), -ERANGE },
		{ "DISCARD of 2^64-512", ZIO(DISK_OP_DISCARD, 0, 512, top), -ERANGE },
		{ "READ unaligned offset", IO(DISK_OP_READ, 0, 256, 512, &v512, 1), -EINVAL },
		{ "WRITE unaligned len", IO(DISK_OP_WRITE, 0, 0, 256, &v512, 1), -EINVAL },
		{ "DISCARD unaligned len", ZIO(DISK_OP_DISCARD, 0, 0, 100), -EINVAL },
		{ "WRITE_ZEROES unaligned", ZIO(DISK_OP_WRITE_ZEROES, 0, 100, 512), -EINVAL },
		{ "READ of 0 bytes", IO(DISK_OP_READ, 0, 0, 0, &v512, 0), -EINVAL },
		{ "DISCARD of 0 bytes", ZIO(DISK_OP_DISCARD, 0, 0, 0), -EINVAL },
		{ "WRITE_ZEROES of 0 bytes", ZIO(DISK_OP_WRITE_ZEROES, 0, 512, 0), -EINVAL },
		{ "READ iovecs short", IO(DISK_OP_READ, 0, 0, 1024, &v512, 1), -EINVAL },
		{ "WRITE iovecs long", IO(DISK_OP_WRITE, 0, 0, 512, &v1k, 1), -EINVAL },
		{ "READ with no iovec", IO(DISK_OP_READ, 0, 0, 512, &v512, 0), -EINVAL },
		{ "WRITE with UNMAP", IO(DISK_OP_WRITE, DISK_F_UNMAP, 0, 512, &v512, 1), -EINVAL },
		{ "READ with FUA", IO(DISK_OP_READ, DISK_F_FUA, 0, 512, &v512, 1), -EINVAL },
		{ "READ with UNMAP", IO(DISK_OP_READ, DISK_F_UNMAP, 0, 512, &v512, 1), -EINVAL },
		{ "DISCARD with FUA", ZIO(DISK_OP_DISCARD, DISK_F_FUA, 0, 512), -EINVAL },
		{ "DISCARD with UNMAP", ZIO(DISK_OP_DISCARD, DISK_F_UNMAP, 0, 512), -EINVAL },
		{ "FLUSH with FUA", ZIO(DISK_OP_FLUSH, DISK_F_FUA, 0, 0), -EINVAL },
		{ "op 5", IO((enum disk_op)5, 0, 0, 512, &v512, 1), -EINVAL },
		{ "op -1", IO((enum disk_op)-1, 0, 0, 512, &v512, 1), -EINVAL },
		/* Last: the sum of iov_len wraps around to len. */
		{ "READ iovecs wrap to len", IO(DISK_OP_READ, 0, 0, 512, wrap, 2), -EINVAL },
	};
	struct trace tr = { .n = 0 };

	t_fault(t, NULL, 0, &tr);
	submit_refused(t, bad, ARRAY_SIZE(bad), &tr);
	/* What is at the edge is fine, and a FLUSH ignores its offset and len. */
	rnd_seed(6);
	assert_int_equal(t_do(t, DISK_OP_WRITE, sz - 512, 512, DISK_F_ALONE), 0);
	assert_int_equal(t_do(t, DISK_OP_READ, sz - 512, 512, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 3, 7, 0), 0);
	assert_int_equal(trace_count(&tr, DISK_FAULT_SUBMIT, DISK_OP_FLUSH), 1);
	t_free(t);
}

/*
 * A read-only disk (a file opened ro) refuses WRITE, DISCARD and
 * WRITE_ZEROES with -EROFS before the engine sees them, and reads.
 * Fails if an ro disk can be changed, or if ro breaks reading.
 */
static void test_refused_ro(void **state)
{
	const struct opts o = { .size = DISK_SIZE, .ro = true, .fill = true };
	struct t *t = t_new(state, &o, __func__);
	static uint8_t buf[512];
	const struct iovec v = { buf, 512 };
	const struct bad_op bad[] = {
		{ "WRITE on ro", IO(DISK_OP_WRITE, 0, 0, 512, &v, 1), -EROFS },
		{ "FUA WRITE on ro", IO(DISK_OP_WRITE, DISK_F_FUA | DISK_F_ALONE, 4096, 512, &v, 1),
		  -EROFS },
		{ "DISCARD on ro", ZIO(DISK_OP_DISCARD, 0, 0, MIB), -EROFS },
		{ "WRITE_ZEROES on ro", ZIO(DISK_OP_WRITE_ZEROES, DISK_F_UNMAP, 0, MIB), -EROFS },
	};
	struct trace tr = { .n = 0 };

	assert_true(disk_props(t->d)->ro);
	t_fault(t, NULL, 0, &tr);
	submit_refused(t, bad, ARRAY_SIZE(bad), &tr);
	rnd_seed(7);
	/* For a file, the model is what it held: pattern(), still there. */
	t_verify(t, 0, 2 * MIB);
	t_free(t);
}

/* ---- cases: the fault filter on every engine ------------------------------ */

/*
 * A rule refusing READs that overlap one 512-byte block: exactly those
 * reads fail with -EIO, answered at submit without the engine seeing
 * them; reads beside the block and writes to it go through.  Fails if
 * the filter matches wrongly or lets a refused op through, or if an
 * error result does not reach the caller.
 */
static void test_fault_refuse_read(void **state)
{
	const struct disk_fault_rule rule = {
		.ops = OPBIT(DISK_OP_READ), .offset = 16 * KIB, .len = 512, .error = -EIO,
	};
	struct t *t = t_plain(state, __func__);
	struct trace tr = { .n = 0 };

	rnd_seed(8);
	assert_int_equal(t_do(t, DISK_OP_WRITE, 0, 64 * KIB, 0), 0);
	t_fault(t, &rule, 1, &tr);
	assert_int_equal(t_do(t, DISK_OP_READ, 16 * KIB, 4 * KIB, 0), -EIO);
	assert_int_equal(t_do(t, DISK_OP_READ, 12 * KIB, 8 * KIB, DISK_F_ALONE), -EIO);
	assert_int_equal(t_do(t, DISK_OP_READ, 16 * KIB + 512, 512, 0), 0);
	assert_int_equal(trace_count(&tr, DISK_FAULT_SUBMIT, DISK_OP_READ), 1);
	assert_int_equal(trace_count(&tr, DISK_FAULT_DONE_NOW, DISK_OP_READ) +
			 trace_count(&tr, DISK_FAULT_REAPED, DISK_OP_READ), 3);
	assert_int_equal(t_do(t, DISK_OP_WRITE, 16 * KIB, 512, 0), 0);
	t_verify(t, 0, 16 * KIB);
	t_verify(t, 16 * KIB + 512, 48 * KIB - 512);
	t_free(t);
}

/*
 * An after-rule: the first WRITE happens but is reported -EIO; the
 * data is on the disk (in the file, for a file engine); the next WRITE
 * succeeds (count 1).  Fails if the filter loses the op, or replaces the
 * result of the wrong op.
 */
static void test_fault_after_write(void **state)
{
	const struct disk_fault_rule rule = {
		.ops = OPBIT(DISK_OP_WRITE), .count = 1, .error = -EIO, .after = true,
	};
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	struct trace tr = { .n = 0 };
	uint8_t buf[4096];

	rnd_seed(9);
	t_fault(t, &rule, 1, &tr);
	batch_rw(&b, DISK_OP_WRITE, 8 * KIB, sizeof(buf), 3, SG_RANDOM, 0);
	batch_submit(t, &b);
	batch_wait(t, &b);
	assert_int_equal(b.op[0].result, -EIO);
	assert_int_equal(trace_count(&tr, DISK_FAULT_SUBMIT, DISK_OP_WRITE), 1);
	op_apply(t, &b.op[0]);		/* it happened all the same */
	if (t->k->file) {
		assert_int_equal(pread(t->fd, buf, sizeof(buf), 8 * KIB), sizeof(buf));
		assert_memory_equal(buf, b.op[0].data, sizeof(buf));
	}
	batch_free(&b);
	t_verify(t, 8 * KIB, sizeof(buf));
	assert_int_equal(t_do(t, DISK_OP_WRITE, 16 * KIB, sizeof(buf), 0), 0);
	t_verify(t, 0, 64 * KIB);
	t_free(t);
}

/*
 * skip and count: with six WRITEs in flight together the 3rd and 4th
 * fail (skip 2, count 2), and after one good READ every READ fails
 * (count 0: all later).  Fails if refused ops mixed with submitted ones
 * confuse the completions, or the filter counts wrongly.
 */
static void test_fault_skip_count(void **state)
{
	const struct disk_fault_rule rules[] = {
		{ .ops = OPBIT(DISK_OP_WRITE), .skip = 2, .count = 2, .error = -ENOSPC },
		{ .ops = OPBIT(DISK_OP_READ), .skip = 1, .error = -EIO },
	};
	static const int want[] = { 0, 0, -ENOSPC, -ENOSPC, 0, 0 };
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	unsigned int i;

	rnd_seed(10);
	t_fault(t, rules, ARRAY_SIZE(rules), NULL);
	for (i = 0; i < ARRAY_SIZE(want); i++)
		batch_rw(&b, DISK_OP_WRITE, i * 64 * KIB, 8 * KIB, 2, SG_RANDOM, 0);
	batch_submit(t, &b);
	batch_wait(t, &b);
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		if (b.op[i].result != want[i])
			fail_msg("write %u: result %d, want %d", i, b.op[i].result, want[i]);
		if (!want[i])
			op_apply(t, &b.op[i]);
	}
	batch_free(&b);
	assert_int_equal(t_do(t, DISK_OP_READ, 0, 8 * KIB, 0), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(t_do(t, DISK_OP_READ, i * 64 * KIB, 8 * KIB, 0), -EIO);
	t_free(t);
}

/*
 * FLUSH rules, shared by FLUSH ops and disk_flush_sync(): two refused
 * (-EIO, the engine never sees them), then two done but reported
 * -ENOSPC, then fine; a rule with a range never matches a FLUSH.  Fails
 * if a FLUSH error is lost on either path.
 */
static void test_fault_flush(void **state)
{
	const struct disk_fault_rule rules[] = {
		{ .offset = 0, .len = 512, .error = -EIO },
		{ .ops = OPBIT(DISK_OP_FLUSH), .count = 2, .error = -EIO },
		{ .ops = OPBIT(DISK_OP_FLUSH), .skip = 2, .count = 2, .error = -ENOSPC,
		  .after = true },
	};
	struct t *t = t_plain(state, __func__);
	struct trace tr = { .n = 0 };

	t_fault(t, rules, ARRAY_SIZE(rules), &tr);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, 0), -EIO);
	assert_int_equal(disk_flush_sync(t->d), -EIO);
	assert_int_equal(trace_count(&tr, DISK_FAULT_SUBMIT, DISK_OP_FLUSH), 0);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, DISK_F_ALONE), -ENOSPC);
	assert_int_equal(trace_count(&tr, DISK_FAULT_SUBMIT, DISK_OP_FLUSH), 1);
	assert_int_equal(disk_flush_sync(t->d), -ENOSPC);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, 0), 0);
	assert_int_equal(disk_flush_sync(t->d), 0);
	assert_int_equal(trace_count(&tr, DISK_FAULT_FLUSH_SYNC, DISK_OP_FLUSH), 3);
	t_free(t);
}

/* The others have completed, and the filter holds the first write's answer. */
static bool write_held(struct t *t, struct batch *b)
{
	return b->pending == 1 && disk_fault_held(t->d) == 1;
}

static void *release_later(void *arg)
{
	const struct timespec ts = { 0, 100 * 1000000 };

	nanosleep(&ts, NULL);
	disk_fault_release(arg);
	return NULL;
}

/*
 * Holding: with WRITEs to the first 4 KiB held, a write there (even one
 * the engine answered at submit, which must then become DISK_SUBMITTED)
 * is not reapable and the notify fd stays quiet, while a read and a
 * write elsewhere complete; released from another thread, it wakes the
 * poller and is reaped once.  Fails if the filter leaks a held
 * completion or holds the wrong one, if an engine's notify fd stays
 * readable with nothing to reap (a busy loop), or a wake-up is lost.
 */
static void test_fault_hold(void **state)
{
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	struct disk_done dd[4];
	struct pollfd p;
	unsigned int i;
	pthread_t th;

	rnd_seed(11);
	t_fault(t, NULL, 0, NULL);
	disk_fault_hold_range(t->d, OPBIT(DISK_OP_WRITE), 0, 4 * KIB);
	batch_rw(&b, DISK_OP_WRITE, 0, 4 * KIB, 2, SG_RANDOM, DISK_F_ALONE);
	batch_rw(&b, DISK_OP_READ, MIB, 4 * KIB, 1, SG_RANDOM, 0);
	batch_rw(&b, DISK_OP_WRITE, 2 * MIB, 4 * KIB, 1, SG_RANDOM, 0);
	batch_submit(t, &b);
	assert_int_equal(b.op[0].state, OP_IN_FLIGHT);
	batch_reap_until(t, &b, write_held);
	assert_int_equal(b.op[0].state, OP_IN_FLIGHT);
	assert_int_equal(disk_reap(t->d, dd, ARRAY_SIZE(dd)), 0);
	p = (struct pollfd){ .fd = disk_notify_fd(t->d), .events = POLLIN };
	if (poll(&p, 1, QUIET_MS) != 0)
		fail_msg("%s: the notify fd is readable with only a held completion", t->k->name);
	assert_int_equal(disk_reap(t->d, dd, ARRAY_SIZE(dd)), 0);
	assert_int_equal(disk_in_flight(t->d), 1);
	assert_int_equal(pthread_create(&th, NULL, release_later, t->d), 0);
	batch_wait(t, &b);
	assert_int_equal(pthread_join(th, NULL), 0);
	for (i = 0; i < b.n; i++) {
		assert_int_equal(b.op[i].result, 0);
		op_apply(t, &b.op[i]);
	}
	batch_free(&b);
	t_verify(t, 0, 4 * KIB);
	t_verify(t, 2 * MIB, 4 * KIB);
	t_free(t);
}

/*
 * Rounds of 1 to 4 small reads, reaped by calling disk_reap() without
 * waiting on the notify fd, so that a reap takes each completion the
 * moment it is posted; once every one was reaped, the notify fd must not
 * be readable (a poll of 0 ms: a quiet engine is quiet now, no waiting).
 * Fails if an engine signals a completion after a reap already took it:
 * the threads engine did (its workers wrote the eventfd after unlocking
 * the done list), which left the fd readable with nothing to reap, a
 * wake-up for nothing, and made test_fault_hold's quiet check fail only
 * when a worker was preempted in that window (a loaded CI machine).
 */
static void test_notify_quiet(void **state)
{
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	struct disk_done dd[4];
	struct pollfd p;
	unsigned int round, i, k;
	int64_t deadline;

	rnd_seed(16);
	for (round = 0; round < QUIET_ROUNDS; round++) {
		for (i = 0; i <= round % 4; i++)
			batch_rw(&b, DISK_OP_READ, i * MIB, 4 * KIB, 1 + i, SG_RANDOM, 0);
		batch_submit(t, &b);
		deadline = now_ms() + WAIT_MS;
		while (b.pending) {
			k = disk_reap(t->d, dd, ARRAY_SIZE(dd));
			assert_true(k <= ARRAY_SIZE(dd));
			for (i = 0; i < k; i++)
				batch_complete(t, &b, &dd[i]);
			if (!k && now_ms() > deadline)
				fail_msg("%s: round %u: %u op(s) still in flight after %d ms",
					 t->k->name, round, b.pending, WAIT_MS);
		}
		assert_int_equal(disk_in_flight(t->d), 0);
		/* Memory answers everything at submit and has no notify fd. */
		if (disk_notify_fd(t->d) >= 0) {
			p = (struct pollfd){ .fd = disk_notify_fd(t->d), .events = POLLIN };
			if (poll(&p, 1, 0) != 0)
				fail_msg("%s: round %u: the notify fd is readable, all reaped",
					 t->k->name, round);
		}
		for (i = 0; i < b.n; i++) {
			assert_int_equal(b.op[i].result, 0);
			op_apply(t, &b.op[i]);
		}
		batch_free(&b);
		b = (struct batch){ .n = 0 };
	}
	t_free(t);
}

/*
 * disk_close() with 32 ops in flight, none reaped, and again with
 * completions the filter holds.  Fails, under ASan/LSan, if an engine
 * leaks, uses freed memory or the caller's buffers after close
 * returned; without them, if close hangs or crashes.
 */
static void test_close_in_flight(void **state)
{
	struct batch b = { .n = 0 };
	const struct disk_io flush = { .op = DISK_OP_FLUSH };
	unsigned int round, i;
	struct t *t;

	rnd_seed(12);
	for (round = 0; round < 2; round++) {
		t = t_plain(state, __func__);
		if (round) {
			t_fault(t, NULL, 0, NULL);
			disk_fault_hold(t->d, ~0u);
		}
		for (i = 0; i < QD - 1; i++)
			batch_rw(&b, i % 4 ? DISK_OP_READ : DISK_OP_WRITE, i * 128 * KIB,
				 64 * KIB, 4, SG_RANDOM, 0);
		batch_add(&b, &flush);
		batch_submit(t, &b);
		disk_close(t->d);
		t->d = NULL;
		batch_free(&b);
		b = (struct batch){ .n = 0 };
		t_free(t);
	}
}

/* ---- cases: memory only ---------------------------------------------------- */

/* Fails if a memory disk of a size the layer cannot address opens. */
static void test_mem_sizes(void **state)
{
	static const uint64_t bad[] = { 0, 511, 513, 1000 };
	struct disk *d;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(disk_open_mem(&d, bad[i], false), -EINVAL);
	assert_int_equal(disk_open_mem(&d, 512, true), 0);
	assert_int_equal(disk_props(d)->size, 512);
	assert_true(disk_props(d)->ro);
	disk_close(d);
}

/*
 * Media without DISCARD or WRITE_ZEROES (props say so): the layer
 * refuses them with -EOPNOTSUPP before the engine, and the other one
 * still works.  Fails if the layer trusts the caller to read the props.
 */
static void test_refused_unsupported(void **state)
{
	const struct disk_props mp = {
		.size = MIB, .logical_block = 512, .physical_block = 512, .write_zeroes = true,
	};
	const struct opts o = { .size = MIB, .mem_props = &mp };
	const struct bad_op bad[] = {
		{ "DISCARD unsupported", ZIO(DISK_OP_DISCARD, 0, 0, 4096), -EOPNOTSUPP },
	};
	const struct bad_op bad2[] = {
		{ "WRITE_ZEROES unsupported", ZIO(DISK_OP_WRITE_ZEROES, 0, 0, 4096), -EOPNOTSUPP },
		{ "WRITE_ZEROES|UNMAP unsupported", ZIO(DISK_OP_WRITE_ZEROES, DISK_F_UNMAP, 0, 512),
		  -EOPNOTSUPP },
	};
	struct disk_props mp2 = mp;
	struct trace tr = { .n = 0 };
	struct t *t = t_new(state, &o, __func__);

	assert_false(disk_props(t->d)->discard);
	t_fault(t, NULL, 0, &tr);
	submit_refused(t, bad, ARRAY_SIZE(bad), &tr);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, 0, 4096, 0), 0);
	t_free(t);

	mp2.discard = true;
	mp2.write_zeroes = false;
	tr.n = 0;
	t = t_new(state, &(struct opts){ .size = MIB, .mem_props = &mp2 }, __func__);
	t_fault(t, NULL, 0, &tr);
	submit_refused(t, bad2, ARRAY_SIZE(bad2), &tr);
	assert_int_equal(t_do(t, DISK_OP_DISCARD, 0, 4096, 0), 0);
	t_free(t);
}

/* ---- cases: file engines only ---------------------------------------------- */

/*
 * A FUA write, once reaped, has left no dirty or writeback page of its
 * range, whether the engine submitted it or ran it at once (ALONE), one
 * at a time and eight in flight.  A plain write just before must leave
 * dirt, or the check proves nothing (skipped).  Fails if FUA is ignored,
 * or the write-back only started (not waited for) before completing.
 */
static void test_fua_durable(void **state)
{
	static const uint32_t flags[] = { 0, DISK_F_ALONE };
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	unsigned int i;

	need_cachestat(t);
	rnd_seed(13);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		assert_int_equal(t_do(t, DISK_OP_WRITE, 2 * i * MIB, 256 * KIB, 0), 0);
		need_dirty(t, 2 * i * MIB, 256 * KIB);
		assert_int_equal(t_do(t, DISK_OP_WRITE, (2 * i + 1) * MIB, 256 * KIB,
				      DISK_F_FUA | flags[i]), 0);
		assert_clean(t, (2 * i + 1) * MIB, 256 * KIB,
			     flags[i] ? "a reaped FUA|ALONE write" : "a reaped FUA write");
	}
	assert_int_equal(t_do(t, DISK_OP_WRITE, 4 * MIB, 256 * KIB, 0), 0);
	need_dirty(t, 4 * MIB, 256 * KIB);
	for (i = 0; i < 8; i++)
		batch_rw(&b, DISK_OP_WRITE, 5 * MIB + i * 256 * KIB, 128 * KIB, 3, SG_RANDOM,
			 DISK_F_FUA);
	batch_run(t, &b);
	for (i = 0; i < 8; i++)
		assert_clean(t, 5 * MIB + i * 256 * KIB, 128 * KIB, "8 FUA writes in flight");
	batch_free(&b);
	t_verify(t, 0, t->size);
	t_free(t);
}

/* A batch of n writes of len bytes from off on, 8 KiB apart; how many were done at submit. */
static unsigned int writes_run(struct t *t, uint64_t off, unsigned int n, uint64_t len,
			       uint32_t flags)
{
	struct batch b = { .n = 0 };
	unsigned int i, now = 0;

	for (i = 0; i < n; i++)
		batch_rw(&b, DISK_OP_WRITE, off + i * (len + 8 * KIB), len, 1 + rnd() % 4,
			 SG_RANDOM, flags);
	batch_run(t, &b);
	for (i = 0; i < n; i++)
		now += b.op[i].state == OP_DONE_NOW;
	batch_free(&b);
	return now;
}

/*
 * Whether the temp directory's file system takes buffered writes without
 * blocking at all: a RWF_NOWAIT one into a cached page is refused if
 * not.  io_uring's choice (hand every buffered write to a worker)
 * follows the same support on the usual file systems.
 */
static bool buffered_writes_block(void)
{
	char path[PATH_MAX], buf[4096];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	ssize_t ret;
	int fd, err;

	snprintf(path, sizeof(path), "%s/tvmm-nowait-XXXXXX", tmp_dir());
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	memset(buf, 1, sizeof(buf));
	/* The page in the cache first: only the file system's support is asked. */
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ret = pwritev2(fd, &iov, 1, 0, RWF_NOWAIT);
	err = errno;
	close(fd);
	return ret < 0 && (err == EAGAIN || err == EOPNOTSUPP);
}

/*
 * n writes of len bytes from off on, until all n were done at submit: a
 * write that took long there (this thread preempted on a busy host)
 * sends the next ones to the ring for a while, so it tries again after
 * a pause, for up to WAIT_MS.  How many the last try did at submit.
 */
static unsigned int writes_here_run(struct t *t, uint64_t off, unsigned int n, uint64_t len)
{
	int64_t deadline = now_ms() + WAIT_MS;
	unsigned int now;

	while ((now = writes_run(t, off, n, len, 0)) != n && now_ms() < deadline)
		usleep(50 * 1000);
	return now;
}

/*
 * io_uring where the file system hands buffered writes to a worker:
 * after learning from the first few dozen (the decision falls inside a
 * batch, with writes still in flight), the engine does plain writes
 * itself at submit, but not FUA ones and not while a FLUSH is in the
 * ring, and again after those.  In that mode the data lands where it
 * should and a FLUSH leaves nothing dirty.  Where the file system writes
 * without blocking the mode is not entered, and the case says so
 * (skipped) after checking the data.  Fails if data is lost or
 * misplaced, if the engine did not learn, if it writes at submit while a
 * sync is in flight or does not again after it, or if a FLUSH completes
 * before the writes done at submit are on the media.
 */
static void test_writes_here(void **state)
{
	const struct disk_io flush = { .op = DISK_OP_FLUSH };
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	unsigned int i;

	need_cachestat(t);
	rnd_seed(21);
	/* Twelve at a time, never alone: how the engine learns where they go. */
	for (i = 0; i < 3; i++)
		writes_run(t, i * 256 * KIB, 12, 16 * KIB, 0);
	if (!buffered_writes_block()) {
		t_verify(t, 0, t->size);
		t_skip(t, "buffered writes do not block here (RWF_NOWAIT ones are taken): "
			  "the engine leaves them to the ring");
	}
	/* The file system blocks, so io_uring hands them off: the engine must have learnt. */
	assert_int_equal(writes_here_run(t, 1 * MIB, 8, 16 * KIB), 8);
	assert_int_equal(writes_here_run(t, 2 * MIB, 8, 64 * KIB), 8);
	need_dirty(t, 2 * MIB, 8 * 72 * KIB);
	/* Behind a FLUSH not yet reaped, writes go to the ring. */
	batch_add(&b, &flush);
	for (i = 0; i < 4; i++)
		batch_rw(&b, DISK_OP_WRITE, 3 * MIB + i * 64 * KIB, 32 * KIB, 2, SG_RANDOM, 0);
	batch_run(t, &b);
	for (i = 1; i < b.n; i++)
		if (b.op[i].state == OP_DONE_NOW)
			fail_msg("%s: a write was done at submit with a FLUSH in the ring",
				 t->k->name);
	batch_free(&b);
	assert_clean(t, 2 * MIB, 8 * 72 * KIB, "a FLUSH after writes done at submit");
	/* FUA writes go to the ring too. */
	assert_int_equal(writes_run(t, 4 * MIB, 8, 16 * KIB, DISK_F_FUA), 0);
	/* With nothing of those left in the ring, plain writes are done at submit again. */
	assert_int_equal(writes_here_run(t, 5 * MIB, 8, 16 * KIB), 8);
	t_verify(t, 0, t->size);
	t_free(t);
}

/* Eight plain writes in flight together, reaped; the file must be dirty. */
static void dirty_the_file(struct t *t)
{
	struct batch b = { .n = 0 };
	unsigned int i;

	for (i = 0; i < 8; i++)
		batch_rw(&b, DISK_OP_WRITE, i * MIB + rnd() % 64 * 512, 128 * KIB, 2, SG_RANDOM, 0);
	batch_run(t, &b);
	batch_free(&b);
	need_dirty(t, 0, t->size);
}

/*
 * Plain writes, all reaped, then a FLUSH (alone or not): once it
 * completes no page of the file is dirty or under writeback; the same
 * for disk_flush_sync().  Fails if a flush completes before the data
 * it covers is on the media, or does nothing.
 */
static void test_flush_durable(void **state)
{
	struct t *t = t_plain(state, __func__);

	need_cachestat(t);
	rnd_seed(14);
	dirty_the_file(t);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, 0), 0);
	assert_clean(t, 0, t->size, "a reaped FLUSH");
	dirty_the_file(t);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, DISK_F_ALONE), 0);
	assert_clean(t, 0, t->size, "a reaped FLUSH|ALONE");
	dirty_the_file(t);
	assert_int_equal(disk_flush_sync(t->d), 0);
	assert_clean(t, 0, t->size, "disk_flush_sync()");
	t_verify(t, 0, t->size);
	t_free(t);
}

#define WIN_START	(64 * KIB + 3 * 512)	/* 512-aligned, not 4 KiB */
#define WIN_LEN		(256 * KIB)

/* The file outside the window still holds pattern(); inside, the model. */
static void check_window_file(struct t *t)
{
	uint8_t *file = malloc(MIB);
	uint64_t i;

	assert_non_null(file);
	assert_int_equal(pread(t->fd, file, MIB, 0), MIB);
	for (i = 0; i < MIB; i++) {
		if (i >= WIN_START && i < WIN_START + WIN_LEN)
			continue;
		if (file[i] != pattern(i))
			fail_msg("%s: file byte %llu, outside the window, was changed", t->k->name,
				 (unsigned long long)i);
	}
	if (memcmp(file + WIN_START, t->model, WIN_LEN))
		fail_msg("%s: the window in the file differs from what the disk was given",
			 t->k->name);
	free(file);
}

/*
 * range=: a 256 KiB window at a 512- but not 4 KiB-aligned start in a
 * 1 MiB file of known bytes.  Reads and writes at the window's first and
 * last blocks hit the window's ends in the file; ops past it are
 * -ERANGE; DISCARD and WRITE_ZEROES at its edges (partial pages, which
 * the file system zeroes by hand) change nothing outside.  Fails if an
 * engine forgets the start, or any op leaks past the window.
 */
static void test_range_window(void **state)
{
	const struct opts o = {
		.size = MIB, .fill = true, .has_range = true, .start = WIN_START, .len = WIN_LEN,
	};
	struct t *t = t_new(state, &o, __func__);
	struct stat st;

	assert_int_equal(t->size, WIN_LEN);
	need_prop(t, disk_props(t->d)->discard, "discard");
	/* nbdkit's file plugin offers trim everywhere and drops it where it cannot punch. */
	if (t->k->nbd && !fs_punches(fs_type(t)))
		t_skip(t, "the file export's directory does not punch holes (the server's trim does nothing)");
	rnd_seed(15);
	t_verify(t, 0, WIN_LEN);
	assert_int_equal(t_do(t, DISK_OP_WRITE, 0, 4 * KIB, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE, WIN_LEN - 512, 512, DISK_F_FUA), 0);
	check_window_file(t);
	assert_int_equal(t_do(t, DISK_OP_READ, WIN_LEN, 512, 0), -ERANGE);
	assert_int_equal(t_do(t, DISK_OP_WRITE, WIN_LEN - 512, 1024, 0), -ERANGE);
	assert_int_equal(t_do(t, DISK_OP_DISCARD, WIN_LEN, 4 * KIB, 0), -ERANGE);
	assert_int_equal(t_do(t, DISK_OP_DISCARD, 0, 4 * KIB, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, WIN_LEN - 4 * KIB, 4 * KIB,
			      DISK_F_UNMAP), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, WIN_LEN - 8 * KIB - 512, 1024, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_WRITE_ZEROES, 0, 512, 0), 0);
	assert_int_equal(t_do(t, DISK_OP_FLUSH, 0, 0, 0), 0);
	check_window_file(t);
	t_verify(t, 0, WIN_LEN);
	assert_int_equal(fstat(t->fd, &st), 0);
	assert_int_equal(st.st_size, MIB);
	t_free(t);
}

/*
 * direct: the host's page cache is bypassed.  Writes and reads through
 * the disk, with buffers the layer must bounce (odd addresses and
 * lengths, the scatter lists here) and whole aligned ones, leave no page
 * of the file cached, and read back what was written.  Fails if an
 * engine drops O_DIRECT (buffered I/O caches every page it touches) or a
 * bounce loses, shifts or leaks data past the iovecs (canaries).
 */
static void test_direct_bypass(void **state)
{
	struct t *t = t_plain(state, __func__);
	struct batch b = { .n = 0 };
	struct t_cachestat cs;
	struct iovec iov;
	struct disk_done dd;
	struct disk_io io;
	void *buf = NULL;
	unsigned int i;
	int ret;

	need_cachestat(t);
	rnd_seed(21);
	for (i = 0; i < 8; i++)
		batch_rw(&b, DISK_OP_WRITE, i * 256 * KIB + rnd() % 64 * 512, 64 * KIB, 5,
			 SG_RANDOM, i & 1 ? DISK_F_FUA : 0);
	batch_run(t, &b);
	batch_free(&b);
	/* One aligned buffer, straight through (no bounce). */
	assert_int_equal(posix_memalign(&buf, 4096, 64 * KIB), 0);
	memset(buf, 0x5c, 64 * KIB);
	iov = (struct iovec){ .iov_base = buf, .iov_len = 64 * KIB };
	io = (struct disk_io){ .op = DISK_OP_WRITE, .offset = 3 * MIB, .len = 64 * KIB,
			       .iov = &iov, .cnt = 1, .cookie = 77 };
	ret = disk_submit(t->d, &io);
	if (ret == DISK_SUBMITTED) {
		disk_commit(t->d);
		while (!disk_reap(t->d, &dd, 1))
			poll(&(struct pollfd){ .fd = disk_notify_fd(t->d), .events = POLLIN }, 1, 10000);
		assert_int_equal(dd.cookie, 77);
		ret = dd.result;
	}
	assert_int_equal(ret, 0);
	memset(t->model + 3 * MIB, 0x5c, 64 * KIB);
	free(buf);
	t_verify(t, 0, t->size);
	assert_int_equal(cachestat_of(t->fd, 0, t->size, &cs), 0);
	if (cs.nr_cache)
		fail_msg("%s: %llu page(s) of the file in the page cache after direct I/O",
			 t->k->name, (unsigned long long)cs.nr_cache);
	t_free(t);
}

/* Submit io, failing if that left more than slack bytes more resident. */
static void submit_lean(struct t *t, struct batch *b, const struct disk_io *io,
			uint64_t slack)
{
	uint64_t before = proc_rss_bytes(), after;

	assert_true(before > 0);
	batch_add(b, io);
	batch_submit(t, b);
	after = proc_rss_bytes();
	if (after > before + slack)
		fail_msg("%s: %llu MiB more resident after submitting a %s of %llu MiB "
			 "(buffers not aligned): the bounce buffers are not bounded",
			 t->k->name, (unsigned long long)((after - before) / MIB),
			 io->op == DISK_OP_WRITE ? "WRITE" : "READ",
			 (unsigned long long)(io->len / MIB));
}

/*
 * direct: what bounce buffers hold is bounded (DISK_BOUNCE_BUDGET).  A
 * guest can name the same few pages of its RAM as a request's buffers
 * over and over: 3 budgets written (FUA) from two unaligned 1 MiB buffers
 * named again and again in uneven halves, then read into one unaligned
 * buffer, must be done at submit (a chunk at a time, chunks spanning
 * iovecs) without the layer allocating their length (fails if it does),
 * and must move the right bytes.  Then three WRITEs of half a budget each, in flight together:
 * the third, past the budget, is done at submit, and once the first two
 * are reaped the budget is back (fails if the layer miscounts either way).
 */
static void test_direct_bounce_bounded(void **state)
{
	const uint64_t big = 3 * (uint64_t)DISK_BOUNCE_BUDGET, half = DISK_BOUNCE_BUDGET / 2;
	const struct opts o = { .size = big + MIB };
	struct t *t = t_new(state, &o, __func__);
	unsigned int i, n = big / MIB * 2;
	struct batch b = { .n = 0 };
	struct iovec *iov = calloc(n, sizeof(*iov));
	uint8_t *src[2] = { malloc(MIB + 1), malloc(MIB + 1) }, *all = calloc(1, big + 1);
	uint8_t *part[4];

	assert_true(iov && src[0] && src[1] && all);
	memset(all, 0xee, big + 1);	/* resident before the READ is measured */
	rnd_fill(src[0] + 1, MIB);
	rnd_fill(src[1] + 1, MIB);
	/* Halves of either 1 MiB, 512 bytes over and short: chunks span iovecs. */
	for (i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = src[i / 2 % 2] + 1 +
						     (i & 1 ? MIB / 2 + 512 : 0),
					 .iov_len = MIB / 2 + (i & 1 ? -512 : 512) };
	submit_lean(t, &b, &(struct disk_io){ .op = DISK_OP_WRITE, .flags = DISK_F_FUA,
					      .len = big, .iov = iov, .cnt = n }, 4 * MIB);
	if (b.op[0].state != OP_DONE_NOW)
		fail_msg("%s: a WRITE past the bounce budget went in flight", t->k->name);
	batch_wait(t, &b);
	assert_int_equal(b.op[0].result, 0);
	for (i = 0; i < big / MIB; i++)
		memcpy(t->model + i * MIB, src[i % 2] + 1, MIB);
	b.n = 0;
	iov[0] = (struct iovec){ .iov_base = all + 1, .iov_len = big };
	submit_lean(t, &b, &(struct disk_io){ .op = DISK_OP_READ, .len = big, .iov = iov,
					      .cnt = 1 }, 4 * MIB);
	if (b.op[0].state != OP_DONE_NOW)
		fail_msg("%s: a READ past the bounce budget went in flight", t->k->name);
	batch_wait(t, &b);
	assert_int_equal(b.op[0].result, 0);
	if (memcmp(all + 1, t->model, big))
		fail_msg("%s: a bounced %llu MiB READ differs from what was written", t->k->name,
			 (unsigned long long)(big / MIB));

	b.n = 0;
	for (i = 0; i < 4; i++) {
		part[i] = malloc(half + 1);
		assert_non_null(part[i]);
		rnd_fill(part[i] + 1, half);
		iov[i] = (struct iovec){ .iov_base = part[i] + 1, .iov_len = half };
		if (i < 3)
			batch_add(&b, &(struct disk_io){ .op = DISK_OP_WRITE, .offset = i * half,
							 .len = half, .iov = &iov[i], .cnt = 1 });
	}
	batch_submit(t, &b);
	assert_int_equal(b.op[0].state, OP_IN_FLIGHT);
	assert_int_equal(b.op[1].state, OP_IN_FLIGHT);
	if (b.op[2].state != OP_DONE_NOW)
		fail_msg("%s: a WRITE past the bounce budget went in flight", t->k->name);
	batch_wait(t, &b);
	batch_add(&b, &(struct disk_io){ .op = DISK_OP_WRITE, .offset = 3 * half, .len = half,
					 .iov = &iov[3], .cnt = 1 });
	batch_submit(t, &b);
	if (b.op[3].state != OP_IN_FLIGHT)
		fail_msg("%s: the bounce budget was not given back by the reaped WRITEs",
			 t->k->name);
	batch_wait(t, &b);
	for (i = 0; i < 4; i++) {
		assert_int_equal(b.op[i].result, 0);
		memcpy(t->model + i * half, part[i] + 1, half);
		free(part[i]);
	}
	t_verify(t, 0, t->size);
	free(iov);
	free(src[0]);
	free(src[1]);
	free(all);
	t_free(t);
}

/* ---- the suite ------------------------------------------------------------- */

static bool probe_uring(void)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init: %s: the io_uring engines are NOT tested here\n",
			strerror(-ret));
		return false;
	}
	io_uring_queue_exit(&ring);
	return true;
}

#define CASE(fn, k)	cmocka_unit_test_prestate(fn, &kinds[k])
#define COMMON_CASES(k) \
	CASE(test_props, k), CASE(test_rw_qd1, k), CASE(test_rw_qd32, k), \
	CASE(test_rw_many_iovecs, k), CASE(test_discard, k), CASE(test_write_zeroes, k), \
	CASE(test_refused, k), CASE(test_refused_ro, k), CASE(test_fault_refuse_read, k), \
	CASE(test_fault_after_write, k), CASE(test_fault_skip_count, k), \
	CASE(test_fault_flush, k), CASE(test_fault_hold, k), CASE(test_notify_quiet, k), \
	CASE(test_close_in_flight, k)
#define FILE_CASES(k) \
	COMMON_CASES(k), CASE(test_fua_durable, k), CASE(test_flush_durable, k), \
	CASE(test_range_window, k)
/* Durability by page-cache dirt means nothing without a page cache. */
#define DIRECT_CASES(k) \
	COMMON_CASES(k), CASE(test_range_window, k), CASE(test_direct_bypass, k), \
	CASE(test_direct_bounce_bounded, k)

int main(void)
{
	const struct CMUnitTest mem[] = {
		COMMON_CASES(0), CASE(test_mem_sizes, 0), CASE(test_refused_unsupported, 0),
	};
	const struct CMUnitTest threads[] = { FILE_CASES(1) };
	const struct CMUnitTest uring[] = { FILE_CASES(2), CASE(test_writes_here, 2) };
	const struct CMUnitTest fault_threads[] = { FILE_CASES(3) };
	const struct CMUnitTest fault_uring[] = { FILE_CASES(4), CASE(test_writes_here, 4) };
	const struct CMUnitTest direct_threads[] = { DIRECT_CASES(5) };
	const struct CMUnitTest direct_uring[] = { DIRECT_CASES(6) };
	const struct CMUnitTest nbd[] = { COMMON_CASES(7), CASE(test_range_window, 7) };
	int failed = 0;

	uring_ok = probe_uring();
	fprintf(stderr, "disk engines: temp files in %s\n", tmp_dir());
	failed += cmocka_run_group_tests_name("engine memory", mem, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine threads", threads, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine io_uring", uring, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine fault(threads)", fault_threads, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine fault(io_uring)", fault_uring, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine direct(threads)", direct_threads, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine direct(io_uring)", direct_uring, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine nbd", nbd, NULL, NULL);
	return failed ? 1 : 0;
}
