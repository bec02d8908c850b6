// SPDX-License-Identifier: MIT
/*
 * The NBD engine against nbdkit (tests/peer/nbd_server.c): a unix socket
 * and TCP on 127.0.0.1; what the handshake says checked against the
 * options at open (one error line each); a server that fails reads
 * (nbdkit's error filter) and a slow one (delay filter) with several
 * requests in flight; the server killed with requests in flight (all
 * -EIO within a bound, one "connection lost" line), requests while it is
 * away (-EIO), and restarted on the same socket or port (service resumes,
 * and a flushed write is still there: nbdkit's file plugin); flushes from
 * another thread; and all of it again under tinyvmm's seccomp filter.
 * What every engine must do with reads, writes and faults is in
 * test_disk_engines.c's conformance suite, nbd group.
 *
 * nbdkit missing fails every case here, loudly: nothing is skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "disk/disk.h"
#include "lib/util.h"
#include "tests/driver/capture.h"
#include "tests/driver/proc.h"
#include "tests/peer/nbd_fake.h"
#include "tests/peer/nbd_server.h"
#include "vmm/seccomp.h"

#define MIB		(1ULL << 20)
#define KIB		1024ULL
#define WAIT_MS		10000	/* only a broken engine takes this long */
#define DEPTH		32
/* The delay filter's read delay while the server is killed: longer than LOST_MS. */
#define SLOW_READ	"rdelay=4"
#define LOST_MS		2000	/* requests in flight fail within this of the kill */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	const struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- stderr, captured ------------------------------------------------------ */

static struct capture cap;

/*
 * While capturing: wait up to ms for what to be written (a line printed
 * by the engine after the request it concerns has already failed).
 */
static bool capture_wait(const char *what, int64_t ms)
{
	int64_t end = now_ms() + ms;

	for (;;) {
		if (strstr(capture_peek(&cap), what))
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(10);
	}
}

/* ---- operations ------------------------------------------------------------ */

struct req {
	struct disk_io io;
	struct iovec iov[3];
	uint8_t *buf;
	int result;
	bool done;
};

/* A READ or WRITE of len bytes at off over buf, in three uneven iovecs. */
static void req_rw(struct req *r, enum disk_op op, uint64_t off, uint8_t *buf, uint64_t len,
		   uint32_t flags)
{
	uint64_t a = len / 3 + 1, b = len / 5;

	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->iov[0] = (struct iovec){ buf, a };
	r->iov[1] = (struct iovec){ buf + a, b };
	r->iov[2] = (struct iovec){ buf + a + b, len - a - b };
	r->io = (struct disk_io){ .op = op, .flags = flags, .offset = off, .len = len,
				  .iov = r->iov, .cnt = 3 };
}

static void req_plain(struct req *r, enum disk_op op, uint64_t off, uint64_t len, uint32_t flags)
{
	memset(r, 0, sizeof(*r));
	r->io = (struct disk_io){ .op = op, .flags = flags, .offset = off, .len = len };
}

/* Reap until nothing is in flight; false when ms passed first. */
static bool reap_all(struct disk *d, struct req *r, unsigned int n, int ms)
{
	int64_t deadline = now_ms() + ms, left;
	struct pollfd p = { .fd = disk_notify_fd(d), .events = POLLIN };
	struct disk_done dd[16];
	unsigned int i, k;

	while (disk_in_flight(d)) {
		k = disk_reap(d, dd, ARRAY_SIZE(dd));
		for (i = 0; i < k; i++) {
			assert_true(dd[i].cookie < n);
			assert_false(r[dd[i].cookie].done);
			r[dd[i].cookie].done = true;
			r[dd[i].cookie].result = dd[i].result;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		if (!k)
			poll(&p, 1, (int)left);
	}
	return true;
}

static void submit_all(struct disk *d, struct req *r, unsigned int n)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		r[i].io.cookie = i;
		ret = disk_submit(d, &r[i].io);
		if (ret != DISK_SUBMITTED) {
			r[i].done = true;
			r[i].result = ret;
		}
	}
	disk_commit(d);
}

static void run_all(struct disk *d, struct req *r, unsigned int n)
{
	submit_all(d, r, n);
	if (!reap_all(d, r, n, WAIT_MS))
		fail_msg("%u request(s) still in flight after %d ms", disk_in_flight(d), WAIT_MS);
}

static int one(struct disk *d, struct req *r)
{
	run_all(d, r, 1);
	return r->result;
}

static int do_rw(struct disk *d, enum disk_op op, uint64_t off, uint8_t *buf, uint64_t len,
		 uint32_t flags)
{
	struct req r;

	req_rw(&r, op, off, buf, len, flags);
	return one(d, &r);
}

static int do_plain(struct disk *d, enum disk_op op, uint64_t off, uint64_t len, uint32_t flags)
{
	struct req r;

	req_plain(&r, op, off, len, flags);
	return one(d, &r);
}

static void fill(uint8_t *p, uint64_t len, unsigned int seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 11));
}

/* 100 iovecs of 512 bytes (more than go out as they are): written, read back. */
static void many_iovecs(struct disk *d, uint64_t off)
{
	static uint8_t w[100 * 512], r[100 * 512];
	struct iovec iov[100];
	struct req q;
	unsigned int i;

	fill(w, sizeof(w), 9);
	for (i = 0; i < 100; i++)
		iov[i] = (struct iovec){ w + i * 512, 512 };
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_WRITE, .offset = off, .len = sizeof(w),
				 .iov = iov, .cnt = 100 };
	assert_int_equal(one(d, &q), 0);
	for (i = 0; i < 100; i++)
		iov[i] = (struct iovec){ r + (99 - i) * 512, 512 };
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_READ, .offset = off, .len = sizeof(r),
				 .iov = iov, .cnt = 100 };
	assert_int_equal(one(d, &q), 0);
	for (i = 0; i < 100; i++)
		assert_memory_equal(r + (99 - i) * 512, w + i * 512, 512);
}

/* ---- opening ----------------------------------------------------------------- */

static struct disk_conf conf(const struct nbd_server *s, bool ro)
{
	return (struct disk_conf){
		.path = s->uri, .ro = ro, .logical_block = 512, .physical_block = 512,
		.depth = DEPTH, .who = "test", .reconnect_ms = 50,
	};
}

static struct disk *open_disk(const struct nbd_server *s, bool ro)
{
	struct disk_conf c = conf(s, ro);
	struct disk *d;
	int ret = disk_open(&d, &c);

	if (ret)
		fail_msg("disk_open(%s): %s", s->uri, strerror(-ret));
	return d;
}

/* A memory export of size bytes, unix or TCP, with extra args before the plugin. */
static void start_memory(struct nbd_server *s, bool tcp, const char *size, const char *a0,
			 const char *a1, const char *a2)
{
	const char *args[6] = { NULL };
	unsigned int n = 0;

	nbd_server_init(s, tcp);
	if (a0)
		args[n++] = a0;
	if (a1)
		args[n++] = a1;
	args[n++] = "memory";
	args[n++] = size;
	if (a2)
		args[n++] = a2;
	nbd_server_start(s, args);
}

/* ---- cases ------------------------------------------------------------------- */

/*
 * Every operation over one transport: props from the handshake (size,
 * engine, socket family, trim and zero offered), uneven iovecs (one
 * command each), 100 small ones (a bounce buffer), FUA, FLUSH,
 * disk_flush_sync(), DISCARD and
 * WRITE_ZEROES (with and without UNMAP) read back as zeros.  Fails if a
 * byte is lost or moved, or an operation fails.
 */
static void basic(bool tcp)
{
	uint8_t *w = malloc(256 * KIB), *r = malloc(256 * KIB);
	struct nbd_server s;
	struct disk *d;
	const struct disk_props *p;

	assert_true(w && r);
	start_memory(&s, tcp, "size=4M", NULL, NULL, NULL);
	d = open_disk(&s, false);
	p = disk_props(d);
	assert_int_equal(p->size, 4 * MIB);
	assert_string_equal(p->engine, "nbd");
	assert_int_equal(p->sock_family, tcp ? AF_INET : AF_UNIX);
	assert_int_equal(p->fd, -1);
	assert_false(p->ro);
	assert_true(p->discard && p->write_zeroes && p->zeroes_unmap);
	assert_true(disk_notify_fd(d) >= 0);
	/* One connection serves one queue (flushes on another need not cover its writes). */
	assert_false(disk_has_queues(d));

	fill(w, 256 * KIB, 1);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, w, 256 * KIB, 0), 0);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, MIB, w, 64 * KIB, DISK_F_FUA), 0);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	memset(r, 0, 256 * KIB);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, r, 256 * KIB, 0), 0);
	assert_memory_equal(r, w, 256 * KIB);
	assert_int_equal(do_rw(d, DISK_OP_READ, MIB, r, 64 * KIB, 0), 0);
	assert_memory_equal(r, w, 64 * KIB);
	many_iovecs(d, 2 * MIB);

	assert_int_equal(do_plain(d, DISK_OP_DISCARD, 0, 64 * KIB, 0), 0);
	assert_int_equal(do_plain(d, DISK_OP_WRITE_ZEROES, 64 * KIB, 64 * KIB, 0), 0);
	assert_int_equal(do_plain(d, DISK_OP_WRITE_ZEROES, 128 * KIB, 64 * KIB,
				  DISK_F_UNMAP | DISK_F_FUA), 0);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, r, 256 * KIB, 0), 0);
	memset(w, 0, 192 * KIB);
	assert_memory_equal(r, w, 256 * KIB);
	disk_close(d);
	nbd_server_stop(&s);
	free(w);
	free(r);
}

static void test_unix(void **state)
{
	basic(false);
}

static void test_tcp(void **state)
{
	basic(true);
}

/*
 * The device over an export: one queue by default whatever the vCPUs,
 * and mq= above 1 refused with one line saying why.
 */
static void test_blk_one_queue(void **state)
{
	struct nbd_server s;
	struct guest_mem gm;
	struct blk_dev *b;
	char args[sizeof(s.uri) + 8];

	(void)state;
	start_memory(&s, false, "size=4M", NULL, NULL, NULL);
	assert_int_equal(gmem_init(&gm, 1 << 20), 0);
	assert_int_equal(blk_dev_create(&b, s.uri, &gm, 4), 0);
	assert_int_equal(b->nr_queues, 1);
	assert_false(b->features & (1ULL << VIRTIO_BLK_F_MQ));
	assert_int_equal(b->cfg.num_queues, 0);
	assert_int_equal(blk_dev_destroy(b), 0);
	snprintf(args, sizeof(args), "%s,mq=2", s.uri);
	assert_int_equal(capture_start(&cap, true), 0);
	assert_int_equal(blk_dev_create(&b, args, &gm, 1), -EINVAL);
	assert_non_null(capture_end(&cap));
	if (!strstr(cap.buf, "mq=2: the nbd engine serves one queue only"))
		fail_msg("mq=2 over NBD: got '%s'", cap.buf);
	gmem_free(&gm);
	nbd_server_stop(&s);
}

/* disk_open() must fail with want and one error line containing what. */
static void open_fails(struct disk_conf *c, int want, const char *what)
{
	struct disk *d = NULL;
	int ret;

	assert_int_equal(capture_start(&cap, true), 0);
	ret = disk_open(&d, c);
	assert_non_null(capture_end(&cap));
	if (!ret)
		disk_close(d);
	if (ret != want)
		fail_msg("disk_open(%s): %d (%s), want %d (%s)", c->path, ret,
			 ret ? strerror(-ret) : "opened", want, strerror(-want));
	assert_null(d);
	if (!strstr(cap.buf, what) || str_count(cap.buf, "\n") != 1)
		fail_msg("disk_open(%s): want one line with '%s', got '%s'", c->path, what, cap.buf);
}

/*
 * What the handshake says against the options: rw on a read-only export,
 * a size that is not whole sectors, a range= past the end, a sectorsize=
 * below the server's minimum block size (blocksize-policy filter), direct and an
 * engine choice, a scheme that is not supported, nobody listening.  Each
 * is one error line, and nothing stays open.  Fails if any of them opens.
 */
static void test_open_errors(void **state)
{
	struct nbd_server s;
	struct disk_conf c;
	struct disk *d;
	char path[PATH_MAX + 64];

	start_memory(&s, false, "size=1M", "-r", NULL, NULL);
	c = conf(&s, false);
	open_fails(&c, -EROFS, "read-only");
	d = open_disk(&s, true);
	assert_true(disk_props(d)->ro);
	assert_false(disk_props(d)->discard || disk_props(d)->write_zeroes);
	disk_close(d);
	nbd_server_stop(&s);

	start_memory(&s, false, "size=1000", NULL, NULL, NULL);
	c = conf(&s, false);
	open_fails(&c, -EINVAL, "not a non-zero multiple of sectorsize");
	nbd_server_stop(&s);

	start_memory(&s, false, "size=1M", NULL, NULL, NULL);
	c = conf(&s, false);
	c.has_range = true;
	c.range_start = 512 * KIB;
	c.range_len = 768 * KIB;
	open_fails(&c, -EINVAL, "runs past the end");
	c.range_len = 256 * KIB;
	assert_int_equal(disk_open(&d, &c), 0);
	assert_int_equal(disk_props(d)->size, 256 * KIB);
	disk_close(d);
	c = conf(&s, false);
	c.direct = true;
	open_fails(&c, -EINVAL, "direct");
	c = conf(&s, false);
	c.engine = DISK_ENGINE_THREADS;
	open_fails(&c, -EINVAL, "aio=");
	c = conf(&s, false);
	c.logical_block = 4096;
	c.physical_block = 4096;
	assert_int_equal(disk_open(&d, &c), 0);
	disk_close(d);
	nbd_server_stop(&s);

	start_memory(&s, false, "size=1M", "--filter=blocksize-policy", NULL,
		     "blocksize-minimum=4096");
	c = conf(&s, false);
	open_fails(&c, -EINVAL, "sectorsize=512 is smaller than the server's minimum block size 4096");
	c.logical_block = c.physical_block = 4096;
	assert_int_equal(disk_open(&d, &c), 0);
	disk_close(d);
	nbd_server_stop(&s);

	c = conf(&s, false);
	c.path = "nbds://127.0.0.1/x";
	open_fails(&c, -EINVAL, "only nbd:// and nbd+unix://");
	nbd_server_init(&s, false);
	snprintf(path, sizeof(path), "%s", s.uri);
	c.path = path;
	assert_int_equal(capture_start(&cap, true), 0);
	assert_true(disk_open(&d, &c) < 0);
	assert_non_null(capture_end(&cap));
	assert_non_null(strstr(cap.buf, "cannot connect"));
	assert_int_equal(str_count(cap.buf, "\n"), 1);
	nbd_server_stop(&s);
	assert_true(disk_path_is_nbd("nbd+unix:///?socket=/x"));
	assert_true(disk_path_is_nbd("nbds+unix:///e"));
	assert_false(disk_path_is_nbd("nbd.img"));
	assert_false(disk_path_is_nbd("./nbd://x"));
}

/*
 * A server that accepts and never says a word (a socket listening that
 * nobody serves): disk_open() gives up after the timeout (1 s here) with
 * -ETIMEDOUT.  In a child, so that an open that waits for ever fails the
 * case (after WAIT_MS) instead of hanging it.
 */
static void test_silent_server(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct nbd_server s;
	struct disk_conf c;
	struct disk *d;
	int64_t t0;
	int fd, st;
	pid_t pid;

	nbd_server_init(&s, false);
	assert_true(strlen(s.sock) < sizeof(a.sun_path));
	memcpy(a.sun_path, s.sock, strlen(s.sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	c = conf(&s, false);
	c.timeout_ms = 1000;
	t0 = now_ms();
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		int ret = disk_open(&d, &c);

		_exit(ret == -ETIMEDOUT ? 0 : ret ? 1 : 2);
	}
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() - t0 > WAIT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			close(fd);
			nbd_server_stop(&s);
			fail_msg("disk_open() still waiting for a silent server after %d ms",
				 WAIT_MS);
		}
		sleep_ms(20);
	}
	fprintf(stderr, "disk_open() gave up on the silent server after %lld ms\n",
		(long long)(now_ms() - t0));
	close(fd);
	nbd_server_stop(&s);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st))
		fail_msg("disk_open() of a silent server: %s, want -ETIMEDOUT",
			 WEXITSTATUS(st) == 2 ? "opened" : "another error");
}

/* One request; its result, failing if submitting it left 4 MiB more resident. */
static int one_lean(struct disk *d, struct req *r)
{
	uint64_t before = proc_rss_bytes(), after;

	assert_true(before > 0);
	submit_all(d, r, 1);
	after = proc_rss_bytes();
	if (!reap_all(d, r, 1, WAIT_MS))
		fail_msg("a request still in flight after %d ms", WAIT_MS);
	if (after > before + 4 * MIB)
		fail_msg("%llu MiB more resident after submitting a %llu MiB request in %u "
			 "iovecs: the bounce buffers are not bounded",
			 (unsigned long long)((after - before) / MIB),
			 (unsigned long long)(r->io.len / MIB), r->io.cnt);
	return r->result;
}

/*
 * What bounce buffers hold is bounded.  A guest can name the same few
 * pages of its RAM as a request's buffers over and over: on an export
 * with 4 KiB blocks, 24 MiB written as 96 whole-block iovecs over one
 * 256 KiB buffer goes out as it is (no copy), and reads back; 24 MiB in
 * iovecs that are not whole blocks (a copy is needed) is written and
 * read a chunk at a time, not copied whole.  Three 4 MiB ones at once:
 * two bounced and in flight, the third past the budget done at submit,
 * three rounds (the budget given back each time).  Fails if a large one
 * makes the engine allocate its length, the budget is miscounted, or a
 * byte is lost or moved.
 */
static void test_bounce_bounded(void **state)
{
	const uint64_t big = 24 * MIB, piece = 256 * KIB;
	uint8_t *one_buf = malloc(piece), *all = malloc(big), *want = malloc(big);
	struct iovec *iov = calloc(big / piece * 2, sizeof(*iov));
	struct nbd_server s;
	struct disk_conf c;
	unsigned int i, k, n;
	struct req q, r[3];
	struct disk *d;

	assert_true(one_buf && all && want && iov);
	start_memory(&s, false, "size=32M", "--filter=blocksize-policy", NULL,
		     "blocksize-minimum=4096");
	c = conf(&s, false);
	c.logical_block = c.physical_block = 4096;
	assert_int_equal(disk_open(&d, &c), 0);
	fill(one_buf, piece, 5);
	memset(all, 0, big);
	n = big / piece;
	for (i = 0; i < n; i++)
		iov[i] = (struct iovec){ one_buf, piece };
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_WRITE, .len = big, .iov = iov, .cnt = n };
	assert_int_equal(one_lean(d, &q), 0);
	iov[0] = (struct iovec){ all, big };
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_READ, .len = big, .iov = iov, .cnt = 1 };
	assert_int_equal(one_lean(d, &q), 0);
	for (i = 0; i < n; i++)
		assert_memory_equal(all + i * piece, one_buf, piece);

	/* Halves that are not whole blocks (2 KiB over, 2 KiB short): a copy is needed. */
	for (i = 0; i < 2 * n; i++)
		iov[i] = (struct iovec){ all + i * (piece / 2) + (i & 1 ? 2048 : 0),
					 piece / 2 + (i & 1 ? -2048 : 2048) };
	fill(all, big, 6);
	memcpy(want, all, big);
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_WRITE, .len = big, .iov = iov, .cnt = 2 * n };
	assert_int_equal(one_lean(d, &q), 0);
	memset(all, 0, big);
	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = DISK_OP_READ, .len = big, .iov = iov, .cnt = 2 * n };
	assert_int_equal(one_lean(d, &q), 0);
	if (memcmp(all, want, big))
		fail_msg("24 MiB written and read a chunk at a time differ");

	/* Three rounds of three 4 MiB ones at once: two bounced, one done at submit. */
	for (k = 0; k < 3; k++) {
		fill(all, 12 * MIB, 7 + k);
		for (i = 0; i < 3; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].io = (struct disk_io){ .op = DISK_OP_WRITE, .offset = i * 4 * MIB,
						    .len = 4 * MIB, .iov = iov + i * 32,
						    .cnt = 32 };
		}
		submit_all(d, r, 3);
		if (r[0].done || r[1].done || !r[2].done)
			fail_msg("round %u: in flight %d %d %d, want 1 1 0: the budget is miscounted",
				 k, !r[0].done, !r[1].done, !r[2].done);
		if (!reap_all(d, r, 3, WAIT_MS))
			fail_msg("writes still in flight after %d ms", WAIT_MS);
		for (i = 0; i < 3; i++)
			assert_int_equal(r[i].result, 0);
	}
	memset(want, 0, 12 * MIB);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, want, 12 * MIB, 0), 0);
	if (memcmp(all, want, 12 * MIB))
		fail_msg("12 MiB written bounced and in chunks read back different");
	disk_close(d);
	nbd_server_stop(&s);
	free(one_buf);
	free(all);
	free(want);
	free(iov);
}

/*
 * buf[0, len) at offset 0 in one whole iovec (no copy needed): its result,
 * failing unless it was done at submit.
 */
static int whole_at_submit(struct disk *d, enum disk_op op, uint8_t *buf, uint64_t len)
{
	struct iovec v = { buf, len };
	struct req q;

	memset(&q, 0, sizeof(q));
	q.io = (struct disk_io){ .op = op, .len = len, .iov = &v, .cnt = 1 };
	submit_all(d, &q, 1);
	if (!q.done)
		fail_msg("a %s of %llu commands was not done at submit: the budget is not kept",
			 op == DISK_OP_READ ? "read" : "write", (unsigned long long)(len / 512));
	return q.result;
}

/*
 * The commands in flight are bounded.  A server that takes 512-byte
 * payloads (blocksize-policy) turns a request into a command per 512
 * bytes.  Two rounds of three 16 MiB writes at once, each 16 whole 1 MiB
 * iovecs over one buffer (32768 commands each): two in flight, the third
 * past the budget done at submit.  Then 40 MiB written and read back in
 * one request each (81920 commands): each done at submit, a chunk at a
 * time.  Fails if the budget is not kept or not given back, or if a byte
 * is lost or moved.
 */
static void test_command_budget(void **state)
{
	const uint64_t piece = MIB, big = 40 * MIB;
	uint8_t *one_buf = malloc(piece), *all = malloc(big), *back = malloc(big);
	struct iovec iov[16];
	struct nbd_server s;
	struct req r[3];
	unsigned int i, k;
	struct disk *d;
	const char *args[] = { "--filter=blocksize-policy", "memory", "size=64M",
			       "blocksize-preferred=512", "blocksize-maximum=512", NULL };

	nbd_server_init(&s, false);
	nbd_server_start(&s, args);
	assert_true(one_buf && all && back);
	d = open_disk(&s, false);
	for (i = 0; i < 16; i++)
		iov[i] = (struct iovec){ one_buf, piece };
	for (k = 0; k < 2; k++) {
		fill(one_buf, piece, 11 + k);
		for (i = 0; i < 3; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].io = (struct disk_io){ .op = DISK_OP_WRITE, .offset = i * 16 * MIB,
						    .len = 16 * MIB, .iov = iov, .cnt = 16 };
		}
		submit_all(d, r, 3);
		if (r[0].done || r[1].done || !r[2].done)
			fail_msg("round %u: in flight %d %d %d, want 1 1 0: the command budget is "
				 "not kept", k, !r[0].done, !r[1].done, !r[2].done);
		if (!reap_all(d, r, 3, WAIT_MS))
			fail_msg("writes still in flight after %d ms", WAIT_MS);
		for (i = 0; i < 3; i++)
			assert_int_equal(r[i].result, 0);
	}
	fill(all, big, 21);
	memset(back, 0, big);
	assert_int_equal(whole_at_submit(d, DISK_OP_WRITE, all, big), 0);
	assert_int_equal(whole_at_submit(d, DISK_OP_READ, back, big), 0);
	if (memcmp(all, back, big))
		fail_msg("40 MiB written and read back with 512-byte commands differ");
	disk_close(d);
	nbd_server_stop(&s);
	free(one_buf);
	free(all);
	free(back);
}

/*
 * nbdkit's error filter fails every read with EIO: reads are -EIO (never
 * 0), writes still succeed.  Fails if a server error is lost.
 */
static void test_server_errors(void **state)
{
	uint8_t buf[8192];
	struct nbd_server s;
	struct disk *d;

	start_memory(&s, false, "size=1M", "--filter=error", NULL, "error-pread-rate=100%");
	d = open_disk(&s, false);
	fill(buf, sizeof(buf), 2);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), 0), 0);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 8192, buf, sizeof(buf), DISK_F_FUA), 0);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), -EIO);
	assert_int_equal(do_rw(d, DISK_OP_READ, 4096, buf, 512, 0), -EIO);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

/*
 * A ro export whose server cannot flush (nbdkit's pattern plugin): FLUSH
 * and disk_flush_sync() succeed, since nothing was written.  Fails if
 * either is sent to the server (libnbd refuses it: -EIO).
 */
static void test_ro_noflush(void **state)
{
	const char *args[] = { "pattern", "size=1M", NULL };
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;

	nbd_server_init(&s, false);
	nbd_server_start(&s, args);
	d = open_disk(&s, true);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), 0);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

/*
 * A server that answers a READ with half the bytes (tests/peer/nbd_fake.c:
 * a short structured reply if structured replies were negotiated, else a
 * simple reply cut short): the read is -EIO, never 0.  Fails if a short
 * read completes as a success.
 */
static void test_short_read(void **state)
{
	uint8_t buf[8192];
	struct nbd_server s;
	struct disk *d;

	nbd_server_init(&s, false);
	s.pid = nbd_fake_start(s.sock, NBD_FAKE_SHORT_READS);
	d = open_disk(&s, true);
	assert_int_equal(capture_start(&cap, true), 0);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), -EIO);
	assert_non_null(capture_end(&cap));
	disk_close(d);
	nbd_server_stop(&s);
}

/*
 * A server that answers a READ with a reply for a request never sent, or
 * with garbage: a protocol error, so the connection is dropped and the
 * read fails -EIO (never 0, never a hang), with one line saying so.
 * Fails if such a reply completes the read, or is waited on for ever.
 */
static void lying_server(enum nbd_fake_mode mode)
{
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;
	int64_t t0;

	int ret;
	bool said;

	nbd_server_init(&s, false);
	s.pid = nbd_fake_start(s.sock, mode);
	d = open_disk(&s, true);
	assert_int_equal(capture_start(&cap, true), 0);
	t0 = now_ms();
	ret = do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0);
	said = capture_wait("connection lost", LOST_MS);
	assert_non_null(capture_end(&cap));
	fprintf(stderr, "the lie was refused after %lld ms\n", (long long)(now_ms() - t0));
	/* The fake server is stopped whatever the outcome. */
	disk_close(d);
	nbd_server_stop(&s);
	assert_int_equal(ret, -EIO);
	if (!said)
		fail_msg("no 'connection lost' line within %d ms of the lie", LOST_MS);
}

static void test_wrong_handle(void **state)
{
	lying_server(NBD_FAKE_WRONG_HANDLE);
}

static void test_garbage_reply(void **state)
{
	lying_server(NBD_FAKE_GARBAGE);
}

/*
 * A slow server (every read takes 300 ms): 16 reads in flight complete,
 * all of them, in well under 16 times the delay, so they were on the
 * wire together.  Fails if the engine sends one request at a time.
 */
static void test_slow_server(void **state)
{
	static uint8_t bufs[16][4096];
	struct req r[16];
	struct nbd_server s;
	struct disk *d;
	int64_t t0, took;
	unsigned int i;

	start_memory(&s, false, "size=1M", "--filter=delay", NULL, "rdelay=300ms");
	d = open_disk(&s, false);
	for (i = 0; i < 16; i++)
		req_rw(&r[i], DISK_OP_READ, i * 8192, bufs[i], sizeof(bufs[i]), 0);
	t0 = now_ms();
	run_all(d, r, 16);
	took = now_ms() - t0;
	for (i = 0; i < 16; i++)
		assert_int_equal(r[i].result, 0);
	fprintf(stderr, "16 reads of 300 ms each took %lld ms\n", (long long)took);
	if (took >= 8 * 300)
		fail_msg("16 delayed reads took %lld ms: they were not in flight together",
			 (long long)took);
	disk_close(d);
	nbd_server_stop(&s);
}

/* The whole of a small text file, NUL-terminated, into cap.buf. */
static const char *slurp(const char *path)
{
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	k = read(fd, cap.buf, sizeof(cap.buf) - 1);
	cap.buf[k > 0 ? k : 0] = 0;
	close(fd);
	return cap.buf;
}

/*
 * A server that cannot FUA (nbdkit's fua filter in its default mode) but
 * flushes: a FUA write goes out as a plain write and then a flush, both
 * before it completes (nbdkit's log filter sees the commands).  Fails if
 * FUA is dropped, or sent to a server that did not offer it.
 */
static void test_fua_emulated(void **state)
{
	char log[PATH_MAX + 32], logarg[PATH_MAX + 48];
	const char *w, *f;
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;
	/* The fua filter's default mode offers no FUA (1.32 refuses "fuamode=none"). */
	const char *args[] = { "--filter=log", "--filter=fua", "memory", "size=1M", logarg,
			       NULL };

	nbd_server_init(&s, false);
	nbd_server_path(&s, "commands.log", log, sizeof(log));
	snprintf(logarg, sizeof(logarg), "logfile=%s", log);
	nbd_server_start(&s, args);
	d = open_disk(&s, false);
	fill(buf, sizeof(buf), 7);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), DISK_F_FUA), 0);
	disk_close(d);
	slurp(log);
	w = strstr(cap.buf, "Write");
	f = w ? strstr(w, "Flush") : NULL;
	if (!w || !f || strstr(cap.buf, "fua=1"))
		fail_msg("a FUA write to a server without FUA: want Write (fua=0), then Flush; "
			 "the server saw:\n%s", cap.buf);
	nbd_server_stop(&s);
}

/* The export's file, 4 MiB of zeros, in the server's dir. */
static void make_export_file(const struct nbd_server *s, char *path, size_t len)
{
	int fd;

	nbd_server_path(s, "export.img", path, len);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 * MIB), 0);
	close(fd);
}

/* Read off until it succeeds (the engine reconnected), bounded. */
static void wait_service(struct disk *d, uint8_t *buf, uint64_t len)
{
	int64_t deadline = now_ms() + WAIT_MS;

	while (do_rw(d, DISK_OP_READ, 0, buf, len, 0)) {
		if (now_ms() > deadline)
			fail_msg("no service %d ms after the server came back", WAIT_MS);
		sleep_ms(20);
	}
}

/* CPU time of this process, in ms. */
static int64_t cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sleep ms with nothing to do but retry a lost connection (every
 * reconnect_ms); how many ms of CPU the process used meanwhile, and in
 * *wall how long it took.
 */
static int64_t cpu_while_away(int ms, int64_t *wall)
{
	int64_t c0 = cpu_ms(), t0 = now_ms();

	sleep_ms(ms);
	*wall = now_ms() - t0;
	return cpu_ms() - c0;
}

/*
 * The server is killed with 16 slow reads in flight: all of them fail
 * -EIO within LOST_MS (well before their delay would end), with one
 * "connection lost ...; reconnecting" line; a request while it is away
 * fails -EIO at once; while it is away, retrying costs next to no CPU
 * (a refused TCP connect must not spin the engine thread); restarted on
 * the same socket or port, the disk serves again, and the write flushed
 * before the kill is there.  Fails on a hang, a crash, a 0 result for a
 * lost request, lost data, or a spin.
 */
static void kill_restart(bool tcp)
{
	static uint8_t bufs[16][4096];
	uint8_t *w = malloc(64 * KIB), *r = malloc(64 * KIB);
	char file[PATH_MAX + 32];
	const char *slow[] = { "--filter=delay", "file", file, SLOW_READ, NULL };
	const char *plain[] = { "file", file, NULL };
	struct req q[16];
	struct nbd_server s;
	struct disk *d;
	int64_t t0, cpu, wall;
	unsigned int i;
	int fd;

	assert_true(w && r);
	nbd_server_init(&s, tcp);
	make_export_file(&s, file, sizeof(file));
	nbd_server_start(&s, slow);
	d = open_disk(&s, false);
	fill(w, 64 * KIB, 3);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, w, 64 * KIB, 0), 0);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);

	for (i = 0; i < 16; i++)
		req_rw(&q[i], DISK_OP_READ, MIB + i * 8192, bufs[i], sizeof(bufs[i]), 0);
	submit_all(d, q, 16);
	sleep_ms(200);
	assert_int_equal(disk_in_flight(d), 16);
	assert_int_equal(capture_start(&cap, true), 0);
	t0 = now_ms();
	nbd_server_kill(&s);
	if (!reap_all(d, q, 16, LOST_MS)) {
		assert_non_null(capture_end(&cap));
		fail_msg("%u request(s) still in flight %d ms after the server died",
			 disk_in_flight(d), LOST_MS);
	}
	for (i = 0; i < 16; i++)
		if (q[i].result != -EIO) {
			assert_non_null(capture_end(&cap));
			fail_msg("read %u in flight at the kill: %d, want -EIO", i, q[i].result);
		}
	fprintf(stderr, "16 requests failed %lld ms after the kill\n", (long long)(now_ms() - t0));
	/* The write flushed before the kill is in the export's file itself. */
	fd = open(file, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 64 * KIB, 0), 64 * KIB);
	close(fd);
	assert_memory_equal(r, w, 64 * KIB);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, r, 4096, 0), -EIO);
	/* Disconnected, but every write was flushed: nothing to report. */
	assert_int_equal(disk_flush_sync(d), 0);
	/* A quarter of a CPU would be a thread spinning. */
	cpu = cpu_while_away(1000, &wall);
	if (cpu * 4 > wall) {
		assert_non_null(capture_end(&cap));
		fail_msg("%lld ms of CPU in %lld ms with the server away: a thread spins",
			 (long long)cpu, (long long)wall);
	}
	nbd_server_start(&s, plain);
	wait_service(d, r, 64 * KIB);
	assert_non_null(capture_end(&cap));
	assert_memory_equal(r, w, 64 * KIB);
	if (str_count(cap.buf, "connection lost") != 1 ||
	    str_count(cap.buf, "; reconnecting\n") != 1 || !strstr(cap.buf, s.uri))
		fail_msg("want one 'connection lost: ...; reconnecting' line for %s, got '%s'",
			 s.uri, cap.buf);
	fill(w, 64 * KIB, 4);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, w, 64 * KIB, DISK_F_FUA), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	disk_close(d);
	nbd_server_stop(&s);
	free(w);
	free(r);
}

static void test_kill_restart_unix(void **state)
{
	kill_restart(false);
}

static void test_kill_restart_tcp(void **state)
{
	kill_restart(true);
}

/*
 * An idle disk whose server restarts reconnects by itself: the next
 * request just works.  A write acknowledged but not flushed when the
 * connection is lost (the memory server really loses it): after the
 * reconnect the next flush
 * fails, once, whichever path asks (disk_flush_sync() here), so a
 * writeback guest is never told that write is safe; a write that was
 * flushed, or FUA, poisons nothing.  Fails if that flush succeeds.
 */
static void test_unflushed_lost(void **state)
{
	const char *args[] = { "memory", "size=1M", NULL };
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;

	start_memory(&s, false, "size=1M", NULL, NULL, NULL);
	d = open_disk(&s, false);
	fill(buf, sizeof(buf), 6);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), DISK_F_FUA), 0);
	/* Idle: the engine notices the close and reconnects before the next request. */
	assert_int_equal(capture_start(&cap, true), 0);
	nbd_server_kill(&s);
	nbd_server_start(&s, args);
	sleep_ms(1500);
	assert_non_null(capture_end(&cap));
	if (!strstr(cap.buf, "connection lost") || !strstr(cap.buf, "reconnected"))
		fail_msg("an idle disk whose server restarted: want 'connection lost' and "
			 "'reconnected' lines, got '%s'", cap.buf);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), 0), 0);
	assert_int_equal(capture_start(&cap, true), 0);
	nbd_server_kill(&s);
	nbd_server_start(&s, args);
	wait_service(d, buf, sizeof(buf));
	assert_non_null(capture_end(&cap));
	assert_int_equal(disk_flush_sync(d), -EIO);
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

/* Kill the server; an idle disk notices at once (its one line). */
static void kill_noticed(struct nbd_server *s)
{
	assert_int_equal(capture_start(&cap, true), 0);
	nbd_server_kill(s);
	sleep_ms(300);
	assert_non_null(capture_end(&cap));
	if (str_count(cap.buf, "connection lost") != 1)
		fail_msg("want one 'connection lost' line, got '%s'", cap.buf);
}

/* The fake server in the temp dir, bound to the relative path "sock". */
static void start_relative(struct nbd_server *s)
{
	char cwd[PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(s->dir), 0);
	s->pid = nbd_fake_start("sock", NBD_FAKE_ZEROS);
	assert_int_equal(chdir(cwd), 0);
}

/*
 * A unix socket the server bound by a relative path (getpeername() says
 * "sock"; tests/peer/nbd_fake.c, since nbdkit makes it absolute), named absolutely in the URI: the disk reconnects after the
 * server restarts, from a working directory that is not the server's.
 * Fails if the reconnect goes to getpeername()'s path.
 */
static void test_reconnect_unix_path(void **state)
{
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;

	nbd_server_init(&s, false);
	start_relative(&s);
	d = open_disk(&s, true);
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), 0);
	kill_noticed(&s);
	start_relative(&s);
	assert_int_equal(capture_start(&cap, true), 0);
	wait_service(d, buf, sizeof(buf));
	assert_non_null(capture_end(&cap));
	assert_int_equal(do_plain(d, DISK_OP_FLUSH, 0, 0, 0), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

/*
 * A server that stops answering reads (nbdkit's delay filter, 3 s) with
 * a 1 s timeout: the read fails -EIO after about the timeout, one
 * 'connection lost' line says why, and writes (not delayed) work again
 * on the new connection.  Fails if the read waits for the server.
 */
static void test_timeout(void **state)
{
	const char *args[] = { "--filter=delay", "memory", "size=1M", "delay-read=3", NULL };
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk_conf c;
	struct disk *d;
	int64_t t0, took;

	start_memory(&s, false, "size=1M", "--filter=delay", NULL, "delay-read=3");
	c = conf(&s, false);
	c.timeout_ms = 1000;
	assert_int_equal(disk_open(&d, &c), 0);
	fill(buf, sizeof(buf), 10);
	assert_int_equal(capture_start(&cap, true), 0);
	t0 = now_ms();
	assert_int_equal(do_rw(d, DISK_OP_READ, 0, buf, sizeof(buf), 0), -EIO);
	took = now_ms() - t0;
	/*
	 * nbdkit 1.32 may abort (raw_send_socket: Assertion `sock >= 0')
	 * once the delayed reads of the dropped connection end: wait for
	 * that, and start it again if it did.  The engine's part is to
	 * reconnect to whatever serves the socket next.
	 */
	sleep_ms(MAX(t0 + 3300 - now_ms(), 0));
	if (waitpid(s.pid, NULL, WNOHANG) == s.pid) {
		s.pid = 0;
		nbd_server_start(&s, args);
	}
	t0 = now_ms();
	while (do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), DISK_F_FUA) && now_ms() - t0 < WAIT_MS)
		sleep_ms(20);
	assert_non_null(capture_end(&cap));
	fprintf(stderr, "a read to a stopped server failed after %lld ms\n", (long long)took);
	if (took < 900 || took > 2000)
		fail_msg("the read failed after %lld ms, want about 1000", (long long)took);
	if (str_count(cap.buf, "connection lost: no answer within 1000 ms") != 1)
		fail_msg("want one 'connection lost: no answer' line, got '%s'", cap.buf);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

/*
 * disk_flush_sync() while disconnected (a reset or shutdown flush in the
 * reconnect window): 0 when nothing acknowledged was lost, -EIO once when
 * an unflushed write was, and the service resumes with a new server.
 * Fails if the window alone makes the flush fail, or hides a lost write.
 */
static void test_flush_sync_down(void **state)
{
	const char *args[] = { "memory", "size=1M", NULL };
	struct disk_conf c;
	uint8_t buf[4096];
	struct nbd_server s;
	struct disk *d;

	start_memory(&s, false, "size=1M", NULL, NULL, NULL);
	c = conf(&s, false);
	c.reconnect_ms = 2000;
	assert_int_equal(disk_open(&d, &c), 0);
	fill(buf, sizeof(buf), 8);
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), DISK_F_FUA), 0);
	kill_noticed(&s);
	assert_int_equal(disk_flush_sync(d), 0);
	nbd_server_start(&s, args);
	wait_service(d, buf, sizeof(buf));
	assert_int_equal(do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), 0), 0);
	kill_noticed(&s);
	assert_int_equal(disk_flush_sync(d), -EIO);
	assert_int_equal(disk_flush_sync(d), 0);
	nbd_server_start(&s, args);
	wait_service(d, buf, sizeof(buf));
	assert_int_equal(disk_flush_sync(d), 0);
	disk_close(d);
	nbd_server_stop(&s);
}

static void *flusher(void *arg)
{
	uintptr_t bad = 0;
	unsigned int i;

	for (i = 0; i < 100; i++)
		bad += disk_flush_sync(arg) != 0;
	return (void *)bad;
}

/*
 * disk_flush_sync() from another thread, 100 times, while this one keeps
 * eight writes in flight: every flush and write succeeds, and the data
 * reads back.  Fails (or trips ASan/TSan-visible corruption) if the two
 * threads share the connection unsafely.
 */
static void test_flush_sync_thread(void **state)
{
	static uint8_t bufs[8][16384], back[16384];
	struct req r[8];
	struct nbd_server s;
	struct disk *d;
	unsigned int round, i;
	pthread_t t;
	void *bad;

	start_memory(&s, false, "size=4M", NULL, NULL, NULL);
	d = open_disk(&s, false);
	assert_int_equal(pthread_create(&t, NULL, flusher, d), 0);
	for (round = 0; round < 25; round++) {
		for (i = 0; i < 8; i++) {
			fill(bufs[i], sizeof(bufs[i]), round * 8 + i);
			req_rw(&r[i], DISK_OP_WRITE, i * 65536, bufs[i], sizeof(bufs[i]),
			       round % 3 ? 0 : DISK_F_FUA);
		}
		run_all(d, r, 8);
		for (i = 0; i < 8; i++)
			assert_int_equal(r[i].result, 0);
	}
	assert_int_equal(pthread_join(t, &bad), 0);
	assert_null(bad);
	for (i = 0; i < 8; i++) {
		assert_int_equal(do_rw(d, DISK_OP_READ, i * 65536, back, sizeof(back), 0), 0);
		assert_memory_equal(back, bufs[i], sizeof(back));
	}
	disk_close(d);
	nbd_server_stop(&s);
}

/* ---- under the seccomp filter ---------------------------------------------- */

struct sc_child {
	const char *uri;
	int up[2], down[2];	/* child -> parent "ready", parent -> child "restarted" */
};

/* The child: open, filter on, I/O, then (after the restart) a reconnect and I/O. */
static int sc_child_run(struct sc_child *sc)
{
	const struct disk_conf c = {
		.path = sc->uri, .logical_block = 512, .physical_block = 512, .depth = 8,
		.who = "test", .reconnect_ms = 20,
	};
	uint8_t buf[8192], back[8192];
	struct disk *d;
	int64_t deadline;
	char ch;

	if (disk_open(&d, &c))
		return 10;
	if (vmm_seccomp_install(vmm_seccomp_socket_flag(disk_props(d)->sock_family), NULL))
		return 11;
	fill(buf, sizeof(buf), 5);
	if (do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), DISK_F_FUA) ||
	    do_plain(d, DISK_OP_FLUSH, 0, 0, 0) || disk_flush_sync(d) ||
	    do_rw(d, DISK_OP_READ, 0, back, sizeof(back), 0) || memcmp(buf, back, sizeof(buf)))
		return 12;
	if (write(sc->up[1], "r", 1) != 1 || read(sc->down[0], &ch, 1) != 1)
		return 13;
	deadline = now_ms() + WAIT_MS;
	while (do_rw(d, DISK_OP_READ, 0, back, sizeof(back), 0)) {
		if (now_ms() > deadline)
			return 14;
		sleep_ms(20);
	}
	if (do_rw(d, DISK_OP_WRITE, 0, buf, sizeof(buf), 0) || disk_flush_sync(d))
		return 15;
	disk_close(d);
	return 0;
}

/*
 * An NBD disk opened before tinyvmm's filter (as vm_create() opens it
 * before main() installs it) works under it, loses its server and
 * reconnects under it (socket() of that family, connect()).  Fails with
 * the filter's one line if a call the engine needs is missing.
 */
static void seccomp_reconnect(bool tcp)
{
	const char *args[] = { "memory", "size=1M", NULL };
	struct sc_child sc;
	struct nbd_server s;
	int status, errfd;
	char path[PATH_MAX + 16], ch;
	pid_t pid;

	start_memory(&s, tcp, "size=1M", NULL, NULL, NULL);
	sc.uri = s.uri;
	assert_int_equal(pipe(sc.up), 0);
	assert_int_equal(pipe(sc.down), 0);
	nbd_server_path(&s, "child.err", path, sizeof(path));
	errfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(errfd >= 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(errfd, STDERR_FILENO);
		_exit(sc_child_run(&sc));
	}
	close(sc.up[1]);
	close(sc.down[0]);
	if (read(sc.up[0], &ch, 1) == 1) {
		nbd_server_kill(&s);
		nbd_server_start(&s, args);
		assert_int_equal(write(sc.down[1], "g", 1), 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	memset(cap.buf, 0, sizeof(cap.buf));
	assert_true(pread(errfd, cap.buf, sizeof(cap.buf) - 1, 0) >= 0);
	close(errfd);
	close(sc.up[0]);
	close(sc.down[1]);
	nbd_server_stop(&s);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("child under seccomp: status 0x%x, stderr '%s'", status, cap.buf);
}

static void test_seccomp_unix(void **state)
{
	seccomp_reconnect(false);
}

static void test_seccomp_tcp(void **state)
{
	seccomp_reconnect(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_blk_one_queue),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_bounce_bounded),
		cmocka_unit_test(test_command_budget),
		cmocka_unit_test(test_server_errors),
		cmocka_unit_test(test_short_read),
		cmocka_unit_test(test_wrong_handle),
		cmocka_unit_test(test_garbage_reply),
		cmocka_unit_test(test_ro_noflush),
		cmocka_unit_test(test_slow_server),
		cmocka_unit_test(test_fua_emulated),
		cmocka_unit_test(test_kill_restart_unix),
		cmocka_unit_test(test_kill_restart_tcp),
		cmocka_unit_test(test_unflushed_lost),
		cmocka_unit_test(test_flush_sync_down),
		cmocka_unit_test(test_reconnect_unix_path),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_flush_sync_thread),
		cmocka_unit_test(test_seccomp_unix),
		cmocka_unit_test(test_seccomp_tcp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
