// SPDX-License-Identifier: MIT
/*
 * disk_open() of files: what it opens (flags, props, engine), the range=
 * window (bytes land at the right file offsets, nothing past it), the
 * error lines, ro, the layer's bounds checks, a file that shrank, more
 * iovecs than one syscall takes, the OFD image locks, and a file system's
 * refusal of DISCARD or zeroing remembered.  Cases where
 * the engine matters run under each file engine (io_uring skipped,
 * loudly, if the kernel refuses it); what every engine does with
 * reads, writes, flushes and faults is tests/unit/test_disk_engines.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/mem.h"
#include "lib/util.h"
#include "tests/driver/capture.h"

/* How long one operation may take before the test fails rather than hang. */
#define IO_TIMEOUT_MS	10000

static const enum disk_engine_kind eng_threads = DISK_ENGINE_THREADS;
static const enum disk_engine_kind eng_uring = DISK_ENGINE_IO_URING;

static struct capture cap;

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 9) + 1);
}

/* A temporary file of size bytes filled with pattern(); path in buf. */
static void make_file(char *buf, uint64_t size)
{
	uint8_t *data = malloc(size + 1);
	uint64_t i;
	int fd;

	strcpy(buf, "/tmp/tvmm-disk-XXXXXX");
	fd = mkstemp(buf);
	assert_true(fd >= 0);
	for (i = 0; i < size; i++)
		data[i] = pattern(i);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

/* What virtio-blk asks for with no options but the path. */
static struct disk_conf conf(const char *path, enum disk_engine_kind engine)
{
	struct disk_conf c = {
		.path = path,
		.logical_block = 512,
		.physical_block = 512,
		.engine = engine,
		.depth = 16,
		.who = "virtio-blk",
	};

	return c;
}

/* conf() with range=LBA/SECTORS in lb-byte sectors. */
static struct disk_conf conf_range(const char *path, enum disk_engine_kind engine, uint32_t lb,
				   uint64_t lba, uint64_t sectors)
{
	struct disk_conf c = conf(path, engine);

	c.logical_block = c.physical_block = lb;
	c.has_range = true;
	c.range_start = lba * lb;
	c.range_len = sectors * lb;
	return c;
}

/* disk_open() with its stderr in cap.buf. */
static int open_conf(struct disk **d, const struct disk_conf *c)
{
	int ret;

	assert_int_equal(capture_start(&cap, false), 0);
	ret = disk_open(d, c);
	assert_non_null(capture_end(&cap));
	if (ret)
		assert_null(*d);
	return ret;
}

/*
 * The engine's own open of a file: a test of the io_uring engine is
 * skipped, loudly, where the kernel refuses io_uring.
 */
static struct disk *open_ok(const struct disk_conf *c)
{
	struct disk *d;
	int ret = open_conf(&d, c);

	if (ret && c->engine == DISK_ENGINE_IO_URING &&
	    strstr(cap.buf, "aio=io_uring: the kernel refuses io_uring")) {
		fprintf(stderr, "*** SKIPPED: io_uring refused by this kernel (%s) ***\n",
			strerror(-ret));
		skip();
	}
	if (ret)
		fprintf(stderr, "disk_open('%s') failed: %s\n", c->path, cap.buf);
	assert_int_equal(ret, 0);
	assert_int_equal(str_count(cap.buf, "\n"), 0);
	assert_string_equal(disk_props(d)->engine,
			    c->engine == DISK_ENGINE_THREADS ? "threads" : "io_uring");
	return d;
}

/*
 * One operation, waited for: its result, whether done at once or
 * reaped after the notify fd became readable.  Fails, never hangs, if
 * the completion does not come within IO_TIMEOUT_MS.
 */
static int do_op(struct disk *d, enum disk_op op, uint32_t flags, const struct iovec *iov,
		 unsigned int cnt, uint64_t off, uint64_t len)
{
	static uint64_t cookie = 1000;
	struct disk_io io = {
		.op = op,
		.flags = flags,
		.offset = off,
		.len = len,
		.iov = iov,
		.cnt = cnt,
		.cookie = ++cookie,
	};
	struct pollfd pfd = { .fd = disk_notify_fd(d), .events = POLLIN };
	struct disk_done done = { .result = 12345 };
	int ret;

	assert_int_equal(disk_in_flight(d), 0);
	ret = disk_submit(d, &io);
	if (ret != DISK_SUBMITTED) {
		assert_true(ret <= 0);
		assert_int_equal(disk_in_flight(d), 0);
		return ret;
	}
	assert_int_equal(disk_in_flight(d), 1);
	assert_true(pfd.fd >= 0);
	disk_commit(d);
	while (!disk_reap(d, &done, 1)) {
		ret = poll(&pfd, 1, IO_TIMEOUT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0)
			fail_msg("op %d at %llu+%llu: no completion after %d ms", op,
				 (unsigned long long)off, (unsigned long long)len, IO_TIMEOUT_MS);
		assert_int_equal(ret, 1);
	}
	assert_int_equal(done.cookie, io.cookie);
	assert_int_equal(disk_in_flight(d), 0);
	assert_true(done.result <= 0);
	return done.result;
}

static int rd(struct disk *d, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return do_op(d, DISK_OP_READ, 0, &iov, 1, off, len);
}

static int wr(struct disk *d, const void *buf, size_t len, uint64_t off, bool fua)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return do_op(d, DISK_OP_WRITE, fua ? DISK_F_FUA : 0, &iov, 1, off, len);
}

static void file_read(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void test_open_regular(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	struct disk_conf c;
	const struct disk_props *p;
	uint8_t buf[1024];
	char path[64];
	struct disk *d;
	int i;

	make_file(path, 64 * 1024);
	c = conf(path, eng);
	d = open_ok(&c);
	p = disk_props(d);
	assert_int_equal(p->size, 64 * 1024);
	assert_int_equal(p->logical_block, 512);
	assert_int_equal(p->physical_block, 512);
	assert_false(p->ro);
	assert_false(p->is_blockdev);
	assert_true(p->fd >= 0);
	assert_int_equal(fcntl(p->fd, F_GETFL) & O_ACCMODE, O_RDWR);
	assert_true(fcntl(p->fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(rd(d, buf, sizeof(buf), 4096), 0);
	for (i = 0; i < (int)sizeof(buf); i++)
		assert_int_equal(buf[i], pattern(4096 + i));
	assert_int_equal(do_op(d, DISK_OP_FLUSH, 0, NULL, 0, 0, 0), 0);
	assert_int_equal(disk_flush_sync(d), 0);
	disk_close(d);
	/* Closing nothing is allowed (error paths). */
	disk_close(NULL);
	unlink(path);
}

/* Without aio=, io_uring where the kernel takes it, else threads (one info line). */
static void test_default_engine(void **state)
{
	struct disk_conf c;
	char path[64];
	struct disk *d;

	make_file(path, 8192);
	c = conf(path, DISK_ENGINE_DEFAULT);
	assert_int_equal(open_conf(&d, &c), 0);
	if (!strcmp(disk_props(d)->engine, "threads")) {
		assert_non_null(strstr(cap.buf, "io_uring unavailable"));
		assert_non_null(strstr(cap.buf, "using aio=threads"));
		assert_int_equal(str_count(cap.buf, "\n"), 1);
	} else {
		assert_string_equal(disk_props(d)->engine, "io_uring");
		assert_int_equal(str_count(cap.buf, "\n"), 0);
	}
	disk_close(d);
	unlink(path);
}

static void test_range_window(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	uint8_t buf[1024], out[512];
	struct disk_conf c;
	char path[64];
	struct disk *d;
	int i;

	make_file(path, 32 * 1024);
	c = conf_range(path, eng, 512, 2, 4);
	d = open_ok(&c);
	assert_int_equal(disk_props(d)->size, 2048);
	/* Offset 0 of the disk is the byte at LBA*L in the file. */
	assert_int_equal(rd(d, buf, 512, 0), 0);
	for (i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(1024 + i));
	disk_close(d);

	/* range= counts logical sectors of the configured size. */
	c = conf_range(path, eng, 4096, 1, 2);
	d = open_ok(&c);
	assert_int_equal(disk_props(d)->size, 8192);
	/* Writes at the window's last sector land at the right file offset. */
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(wr(d, buf, 512, 8192 - 512, true), 0);
	file_read(path, out, 512, 4096 + 8192 - 512);
	assert_memory_equal(out, buf, 512);
	/* ... reads come from there too ... */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rd(d, buf, 512, 0), 0);
	for (i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(4096 + i));
	/* ... and nothing reaches past the window. */
	memset(buf, 0xcd, sizeof(buf));
	assert_int_equal(wr(d, buf, 1024, 8192 - 512, false), -ERANGE);
	assert_int_equal(wr(d, buf, 512, 8192, false), -ERANGE);
	assert_int_equal(rd(d, buf, 512, 8192), -ERANGE);
	assert_int_equal(rd(d, buf, 1024, 8192 - 512), -ERANGE);
	file_read(path, out, 512, 4096 + 8192);
	for (i = 0; i < 512; i++)
		assert_int_equal(out[i], pattern(4096 + 8192 + i));
	file_read(path, out, 512, 4096 + 8192 - 512);
	assert_int_equal(out[0], 0xab);
	assert_int_equal(out[511], 0xab);
	/* ... nor before it. */
	file_read(path, out, 512, 4096 - 512);
	for (i = 0; i < 512; i++)
		assert_int_equal(out[i], pattern(4096 - 512 + i));
	disk_close(d);
	unlink(path);
}

/* c fails with ret and exactly one error line holding want. */
static void open_fails(const struct disk_conf *c, int ret, const char *want)
{
	struct disk *d = (struct disk *)1;

	assert_int_equal(open_conf(&d, c), ret);
	assert_null(d);
	if (!strstr(cap.buf, want))
		fail_msg("'%s' not in: %s", want, cap.buf);
	assert_int_equal(str_count(cap.buf, "\n"), 1);
	assert_non_null(strstr(cap.buf, "error: "));
}

static void test_open_errors(void **state)
{
	char path[64], dir[64], want[128];
	struct disk_conf c;
	struct disk *d;
	int fd;

	c = conf("/nonexistent/tvmm.img", DISK_ENGINE_THREADS);
	open_fails(&c, -ENOENT, "virtio-blk: cannot open image '/nonexistent/tvmm.img': ");
	/* The prefix is the caller's. */
	c.who = "disk-test";
	open_fails(&c, -ENOENT, "disk-test: cannot open image '/nonexistent/tvmm.img': ");

	strcpy(dir, "/tmp/tvmm-dir-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* A directory cannot even be opened O_RDWR; read-only it opens, then fails fstat's test. */
	c = conf(dir, DISK_ENGINE_THREADS);
	assert_true(open_conf(&d, &c) < 0);
	assert_non_null(strstr(cap.buf, dir));
	assert_int_equal(str_count(cap.buf, "\n"), 1);
	c.ro = true;
	snprintf(want, sizeof(want), "virtio-blk: '%s' is neither a regular file nor a block device",
		 dir);
	open_fails(&c, -EINVAL, want);
	rmdir(dir);

	c = conf("/dev/null", DISK_ENGINE_THREADS);
	open_fails(&c, -EINVAL, "virtio-blk: '/dev/null' is neither a regular file nor a block device");

	make_file(path, 1000);
	c = conf(path, DISK_ENGINE_THREADS);
	open_fails(&c, -EINVAL, "size 1000 is not a multiple of sectorsize 512");
	assert_non_null(strstr(cap.buf, path));
	unlink(path);

	make_file(path, 6144);
	c = conf(path, DISK_ENGINE_THREADS);
	c.logical_block = c.physical_block = 4096;
	open_fails(&c, -EINVAL, "size 6144 is not a multiple of sectorsize 4096");
	/* A ragged tail is fine when the window stays clear of it. */
	c = conf_range(path, DISK_ENGINE_THREADS, 4096, 0, 1);
	assert_int_equal(open_conf(&d, &c), 0);
	assert_int_equal(str_count(cap.buf, "\n"), 0);
	assert_int_equal(disk_props(d)->size, 4096);
	disk_close(d);
	c = conf_range(path, DISK_ENGINE_THREADS, 512, 10, 3);
	open_fails(&c, -EINVAL, "virtio-blk: range=10/3: the window runs past the end of '");
	assert_non_null(strstr(cap.buf, path));
	assert_non_null(strstr(cap.buf, "(6144 bytes)"));
	/* A start past the end is no better, nor are sizes that wrap. */
	c = conf_range(path, DISK_ENGINE_THREADS, 512, 13, 0);
	open_fails(&c, -EINVAL, "past the end of '");
	c = conf_range(path, DISK_ENGINE_THREADS, 512, 1, 0);
	c.range_len = UINT64_MAX - 511;
	open_fails(&c, -EINVAL, "past the end of '");
	unlink(path);

	strcpy(path, "/tmp/tvmm-empty-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	c = conf(path, DISK_ENGINE_THREADS);
	snprintf(want, sizeof(want), "virtio-blk: '%s' is empty", path);
	open_fails(&c, -EINVAL, want);
	unlink(path);
}

static void test_ro(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	uint8_t buf[512], out[512];
	const struct disk_props *p;
	struct disk_conf c;
	char path[64];
	struct disk *d;

	make_file(path, 8192);
	c = conf(path, eng);
	c.ro = true;
	d = open_ok(&c);
	p = disk_props(d);
	assert_true(p->ro);
	assert_false(p->discard);
	assert_false(p->write_zeroes);
	assert_int_equal(fcntl(p->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(wr(d, buf, 512, 0, false), -EROFS);
	assert_int_equal(wr(d, buf, 512, 0, true), -EROFS);
	assert_int_equal(do_op(d, DISK_OP_DISCARD, 0, NULL, 0, 0, 512), -EROFS);
	assert_int_equal(do_op(d, DISK_OP_WRITE_ZEROES, 0, NULL, 0, 0, 512), -EROFS);
	/* Even past the layer's check, the fd itself refuses. */
	assert_true(pwrite(p->fd, buf, 512, 0) < 0);
	assert_int_equal(errno, EBADF);
	file_read(path, out, 512, 0);
	assert_int_equal(out[0], pattern(0));
	assert_int_equal(out[511], pattern(511));
	/* Reads and flushes are fine. */
	assert_int_equal(rd(d, out, 512, 512), 0);
	assert_int_equal(out[0], pattern(512));
	assert_int_equal(do_op(d, DISK_OP_FLUSH, 0, NULL, 0, 0, 0), 0);
	disk_close(d);
	unlink(path);
}

static void test_bounds(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	struct iovec iov[2];
	uint8_t buf[1024];
	struct disk_conf c;
	char path[64];
	struct disk *d;
	int i;

	make_file(path, 8192);
	c = conf_range(path, eng, 512, 4, 8);
	d = open_ok(&c);
	assert_int_equal(disk_props(d)->size, 4096);
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(wr(d, buf, 512, 4096 - 512, false), 0);
	assert_int_equal(rd(d, buf, 512, 4096 - 512), 0);
	/* Nothing to move, or not whole sectors: refused, not done. */
	assert_int_equal(rd(d, buf, 0, 4096), -EINVAL);
	assert_int_equal(rd(d, buf, 0, 0), -EINVAL);
	assert_int_equal(rd(d, buf, 512, 4096 - 511), -EINVAL);
	assert_int_equal(wr(d, buf, 512, 4096 - 511, false), -EINVAL);
	assert_int_equal(wr(d, buf, 500, 0, false), -EINVAL);
	/* One sector past the window, a huge offset, sums that wrap. */
	assert_int_equal(wr(d, buf, 1024, 4096 - 512, true), -ERANGE);
	assert_int_equal(rd(d, buf, 512, 4096), -ERANGE);
	assert_int_equal(rd(d, buf, 512, UINT64_MAX - 511), -ERANGE);
	assert_int_equal(wr(d, buf, 512, UINT64_MAX - 511, false), -ERANGE);
	iov[0].iov_base = buf;
	iov[0].iov_len = 512;
	assert_int_equal(do_op(d, DISK_OP_WRITE, 0, iov, 1, 4096 - 512, UINT64_MAX - 511),
			 -ERANGE);
	assert_int_equal(do_op(d, DISK_OP_DISCARD, 0, NULL, 0, 4096 - 512, 1024), -ERANGE);
	assert_int_equal(do_op(d, DISK_OP_WRITE_ZEROES, 0, NULL, 0, 4096, 512), -ERANGE);
	/* A length that is not what the iovecs hold, or no iovecs. */
	iov[1].iov_base = buf + 512;
	iov[1].iov_len = 512;
	assert_int_equal(do_op(d, DISK_OP_WRITE, 0, iov, 2, 0, 512), -EINVAL);
	assert_int_equal(do_op(d, DISK_OP_READ, 0, iov, 1, 0, 1024), -EINVAL);
	assert_int_equal(do_op(d, DISK_OP_READ, 0, iov, 0, 0, 512), -EINVAL);
	iov[1].iov_len = SSIZE_MAX;
	assert_int_equal(do_op(d, DISK_OP_READ, 0, iov, 2, 0, 1024), -EINVAL);
	/* Flags where they mean nothing, an op that does not exist. */
	assert_int_equal(do_op(d, DISK_OP_READ, DISK_F_FUA, iov, 1, 0, 512), -EINVAL);
	assert_int_equal(do_op(d, DISK_OP_WRITE, DISK_F_UNMAP, iov, 1, 0, 512), -EINVAL);
	assert_int_equal(do_op(d, (enum disk_op)99, 0, iov, 1, 0, 512), -EINVAL);
	disk_close(d);

	/* The refused writes touched nothing, in the window or after it. */
	c = conf(path, eng);
	d = open_ok(&c);
	/* The window is file bytes 2048..6143. */
	assert_int_equal(rd(d, buf, 1024, 6144 - 512), 0);
	for (i = 0; i < 512; i++) {
		assert_int_equal(buf[i], 0x11);
		assert_int_equal(buf[512 + i], pattern(6144 + i));
	}
	assert_int_equal(rd(d, buf, 1024, 2048 - 512), 0);
	for (i = 0; i < 1024; i++)
		assert_int_equal(buf[i], pattern(2048 - 512 + i));
	assert_int_equal(rd(d, buf, 512, 8192 - 512), 0);
	for (i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(8192 - 512 + i));
	disk_close(d);
	unlink(path);
}

static void test_short_read_at_eof(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	uint8_t buf[1024];
	struct disk_conf c;
	char path[64];
	struct disk *d;

	make_file(path, 8192);
	c = conf(path, eng);
	d = open_ok(&c);
	/* The file shrinks behind our back: the read hits EOF halfway. */
	assert_int_equal(truncate(path, 8192 - 256), 0);
	assert_int_equal(rd(d, buf, 512, 8192 - 512), -EIO);
	assert_int_equal(rd(d, buf, 1024, 8192 - 1024), -EIO);
	/* ... or before it starts. */
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(rd(d, buf, 512, 8192 - 512), -EIO);
	assert_int_equal(rd(d, buf, 1024, 4096 - 512), -EIO);
	assert_int_equal(rd(d, buf, 512, 0), 0);
	assert_int_equal(buf[0], pattern(0));
	disk_close(d);
	unlink(path);
}

/* More segments than one preadv/pwritev (or READV SQE) takes, some empty. */
static void test_many_iovecs(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	/* A whole number of sectors: (IOV_MAX + 320) * 16 = 42 * 512. */
	enum { NR = IOV_MAX + 320, SEG = 16, LEN = NR * SEG };
	static struct iovec iov[NR + 2];
	static uint8_t src[LEN], dst[LEN];
	struct disk_conf c;
	char path[64];
	struct disk *d;
	unsigned int i, n;

	_Static_assert(LEN % 512 == 0, "whole sectors");
	make_file(path, 64 * 1024);
	c = conf(path, eng);
	d = open_ok(&c);
	for (i = 0; i < LEN; i++)
		src[i] = (uint8_t)(i * 13 + 5);
	for (i = 0; i < NR; i++) {
		iov[i].iov_base = src + i * SEG;
		iov[i].iov_len = SEG;
	}
	assert_int_equal(do_op(d, DISK_OP_WRITE, DISK_F_FUA, iov, NR, 512, LEN), 0);
	assert_int_equal(do_op(d, DISK_OP_WRITE, 0, iov, NR, 512, LEN), 0);
	file_read(path, dst, LEN, 512);
	assert_memory_equal(dst, src, LEN);
	/* Empty segments (one early, one last) are skipped, not a stall. */
	memset(dst, 0, sizeof(dst));
	for (i = n = 0; i < NR + 2; i++) {
		if (i == 5 || i == NR + 1) {
			iov[i].iov_base = dst;
			iov[i].iov_len = 0;
			continue;
		}
		iov[i].iov_base = dst + n * SEG;
		iov[i].iov_len = SEG;
		n++;
	}
	assert_int_equal(n, NR);
	assert_int_equal(do_op(d, DISK_OP_READ, 0, iov, NR + 2, 512, LEN), 0);
	assert_memory_equal(dst, src, LEN);
	disk_close(d);
	unlink(path);
}

/* The memory disk (test-only) in brief; test_disk_engines.c has the rest. */
static void test_memory_disk(void **state)
{
	uint8_t buf[512], zero[512] = { 0 };
	struct disk *d;

	assert_int_equal(disk_open_mem(&d, 0, false), -EINVAL);
	assert_int_equal(disk_open_mem(&d, 1000, false), -EINVAL);
	assert_int_equal(disk_open_mem(&d, 8192, true), 0);
	assert_int_equal(disk_props(d)->size, 8192);
	assert_int_equal(disk_props(d)->fd, -1);
	assert_true(disk_props(d)->ro);
	assert_string_equal(disk_props(d)->engine, "memory");
	assert_int_equal(disk_notify_fd(d), -1);
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(wr(d, buf, 512, 0, false), -EROFS);
	assert_int_equal(rd(d, buf, 512, 8192 - 512), 0);
	assert_memory_equal(buf, zero, 512);
	assert_int_equal(rd(d, buf, 512, 8192), -ERANGE);
	disk_close(d);
}

/* The lock message, exactly one line, for path and the holder's kind. */
static void assert_locked_msg(const char *path, const char *kind)
{
	char want[256];

	snprintf(want, sizeof(want),
		 "virtio-blk: '%s' is in use by another process (locked for %s)\n", path, kind);
	assert_string_equal(cap.buf + strlen("tinyvmm: error: "), want);
}

static int open_lock(struct disk **d, const char *path, enum disk_engine_kind eng, bool ro,
		     uint32_t lb, int64_t lba, uint64_t sectors)
{
	struct disk_conf c = lba < 0 ? conf(path, eng) : conf_range(path, eng, lb, lba, sectors);

	c.ro = ro;
	return open_conf(d, &c);
}

/* Whole file (rw, ro) and windows of 512-byte sectors. */
#define OPEN_RW(d)		open_lock(d, path, eng, false, 512, -1, 0)
#define OPEN_RO(d)		open_lock(d, path, eng, true, 512, -1, 0)
#define OPEN_WIN(d, lba, n, ro)	open_lock(d, path, eng, ro, 512, lba, n)

/*
 * OFD locks belong to the open file description: two disk_open()s of one
 * image in this process conflict just as two processes would, and the
 * lock goes away when the engine closes the file.
 */
static void test_lock(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	struct disk *d1, *d2, *d3;
	struct disk_conf c;
	char path[64];

	make_file(path, 64 * 1024);
	c = conf(path, eng);
	/* Skips the io_uring run where the kernel refuses io_uring. */
	disk_close(open_ok(&c));

	/* rw + rw */
	assert_int_equal(OPEN_RW(&d1), 0);
	assert_int_equal(OPEN_RW(&d2), -EBUSY);
	assert_locked_msg(path, "writing");
	/* rw + ro */
	assert_int_equal(OPEN_RO(&d2), -EBUSY);
	assert_locked_msg(path, "writing");
	/* A window inside a whole-file write lock conflicts too. */
	assert_int_equal(OPEN_WIN(&d2, 8, 8, false), -EBUSY);
	assert_locked_msg(path, "writing");
	/* The lock goes away with the disk. */
	disk_close(d1);
	assert_int_equal(OPEN_RW(&d1), 0);
	disk_close(d1);

	/* ro + ro share; ro + rw conflicts. */
	assert_int_equal(OPEN_RO(&d1), 0);
	assert_int_equal(OPEN_RO(&d2), 0);
	assert_int_equal(OPEN_RW(&d3), -EBUSY);
	assert_locked_msg(path, "reading");
	assert_int_equal(OPEN_WIN(&d3, 0, 4, false), -EBUSY);
	assert_locked_msg(path, "reading");
	disk_close(d1);
	assert_int_equal(OPEN_RW(&d3), -EBUSY);
	disk_close(d2);

	/* Windows: disjoint ones are independent, touching ones too. */
	assert_int_equal(OPEN_WIN(&d1, 0, 8, false), 0);
	assert_int_equal(OPEN_WIN(&d2, 8, 8, false), 0);
	assert_int_equal(OPEN_WIN(&d3, 16, 8, true), 0);
	disk_close(d3);
	/* Overlapping by one sector: rw and ro both refused. */
	assert_int_equal(OPEN_WIN(&d3, 7, 2, false), -EBUSY);
	assert_locked_msg(path, "writing");
	assert_int_equal(OPEN_WIN(&d3, 15, 1, true), -EBUSY);
	assert_locked_msg(path, "writing");
	/* range= counts logical sectors: 4096-byte sector 1 is bytes 4096-8191. */
	assert_int_equal(open_lock(&d3, path, eng, false, 4096, 1, 1), -EBUSY);
	assert_int_equal(open_lock(&d3, path, eng, false, 4096, 2, 1), 0);
	disk_close(d3);
	/* The whole file overlaps every window. */
	assert_int_equal(OPEN_RO(&d3), -EBUSY);
	disk_close(d1);
	/* Only the window at 8 is still held. */
	assert_int_equal(OPEN_WIN(&d3, 0, 8, false), 0);
	disk_close(d3);
	disk_close(d2);
	unlink(path);
}

/* A lock held through another process's own fd is honoured the same way. */
static void test_lock_other_process(void **state)
{
	enum disk_engine_kind eng = *(const enum disk_engine_kind *)*state;
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	int go[2], done[2], fd, st;
	struct disk_conf c;
	struct disk *d;
	char path[64], ch;
	pid_t pid;

	make_file(path, 8192);
	c = conf(path, eng);
	disk_close(open_ok(&c));
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(path, O_RDONLY);
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
			_exit(1);
		if (write(go[1], "x", 1) != 1 || read(done[0], &ch, 1) != 1)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(read(go[0], &ch, 1), 1);
	assert_int_equal(OPEN_RW(&d), -EBUSY);
	assert_locked_msg(path, "reading");
	assert_int_equal(OPEN_RO(&d), 0);
	disk_close(d);
	assert_int_equal(write(done[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The holder exited: its lock went with it. */
	assert_int_equal(OPEN_RW(&d), 0);
	disk_close(d);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	unlink(path);
}

/* ---- a refusal remembered ------------------------------------------------ */

/* What the child of test_refusal_remembered() saw, in memory shared with the test. */
struct refusal_seen {
	int refused;		/* fallocate() calls of the trapped mode */
	int result[3];		/* of the three operations */
	int stage;		/* 3: all done; less: where the child stopped */
	int err;		/* errno where it stopped */
	bool no_discard;	/* the file system punches no holes: nothing to test */
};

static struct refusal_seen *seen;

/* SIGSYS from the filter: the file system "refuses" the mode, counted. */
static void refuse_fallocate(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	(void)sig;
	(void)si;
	__atomic_add_fetch(&seen->refused, 1, __ATOMIC_RELAXED);
	uc->uc_mcontext.gregs[REG_RAX] = -EOPNOTSUPP;
}

/* fallocate() with a mode holding bit traps, on every thread; 0 or -1. */
static int trap_fallocate(unsigned int bit)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fallocate, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bit, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(f), .filter = f };
	struct sigaction sa = { .sa_sigaction = refuse_fallocate, .sa_flags = SA_SIGINFO };

	if (sigaction(SIGSYS, &sa, NULL) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

/* One DISCARD or WRITE_ZEROES in the child, waited for without cmocka. */
static int child_op(struct disk *d, enum disk_op op, uint64_t off)
{
	struct disk_io io = { .op = op, .offset = off, .len = 4096, .cookie = 1 };
	struct pollfd p = { .fd = disk_notify_fd(d), .events = POLLIN };
	struct disk_done done;
	int i, ret = disk_submit(d, &io);

	if (ret != DISK_SUBMITTED)
		return ret;
	disk_commit(d);
	for (i = 0; i < IO_TIMEOUT_MS / 10; i++) {
		if (disk_reap(d, &done, 1))
			return done.result;
		poll(&p, 1, 10);
	}
	return -ETIMEDOUT;
}

/* The child: the disk opened, then fallocate() with bit refused, then op three times. */
static void child_refused(const char *path, unsigned int bit, enum disk_op op)
{
	struct disk_conf c = conf(path, DISK_ENGINE_THREADS);
	struct disk *d;
	int i;

	alarm(IO_TIMEOUT_MS / 1000 * 3);	/* a child that loops is killed, not waited for */
	seen->err = -disk_open(&d, &c);
	if (seen->err)
		_exit(1);
	seen->stage = 1;
	if (!disk_props(d)->discard) {
		seen->no_discard = true;
		_exit(0);
	}
	if (trap_fallocate(bit)) {
		seen->err = errno;
		_exit(1);
	}
	seen->stage = 2;
	for (i = 0; i < 3; i++)
		seen->result[i] = child_op(d, op, i * 4096);
	disk_close(d);
	seen->stage = 3;
	_exit(0);
}

/* The child for bit and op run to its end; what it saw is in *seen. */
static void run_refused(const char *path, unsigned int bit, enum disk_op op)
{
	pid_t pid;
	int st;

	memset(seen, 0, sizeof(*seen));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_refused(path, bit, op);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("the child was killed by signal %d at stage %d (SIGALRM: it looped)",
			 WTERMSIG(st), seen->stage);
	if (seen->no_discard) {
		fprintf(stderr, "*** SKIPPED: %s punches no holes: refusals not tested ***\n", path);
		skip();
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) || seen->stage != 3)
		fail_msg("the child stopped at stage %d (status %#x): %s", seen->stage, st,
			 strerror(seen->err));
}

/*
 * A file system that refuses an fallocate() mode is asked once: a
 * seccomp filter answers EOPNOTSUPP for FALLOC_FL_ZERO_RANGE (then for
 * FALLOC_FL_PUNCH_HOLE) and counts the calls, from after the open (whose
 * probe would otherwise take the offer away).  Three WRITE_ZEROES: one
 * refused zeroing, then punched holes only, all 0 and zeros in the file.
 * Three DISCARDs: one refused punch, all -EOPNOTSUPP (UNSUPP to the
 * guest).  Fails if a refusal is not remembered (asked again each time)
 * or turned into success.
 */
static void test_refusal_remembered(void **state)
{
	char path[64];
	uint8_t buf[3 * 4096], zero[3 * 4096] = { 0 };
	int i;

	(void)state;
	seen = mmap(NULL, sizeof(*seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(seen != MAP_FAILED);
	make_file(path, 64 * 1024);
	run_refused(path, FALLOC_FL_ZERO_RANGE, DISK_OP_WRITE_ZEROES);
	for (i = 0; i < 3; i++)
		assert_int_equal(seen->result[i], 0);
	if (seen->refused != 1)
		fail_msg("zeroing asked for %d times after the file system refused it", seen->refused);
	file_read(path, buf, sizeof(buf), 0);
	assert_memory_equal(buf, zero, sizeof(buf));

	run_refused(path, FALLOC_FL_PUNCH_HOLE, DISK_OP_DISCARD);
	for (i = 0; i < 3; i++)
		assert_int_equal(seen->result[i], -EOPNOTSUPP);
	if (seen->refused != 1)
		fail_msg("a hole asked for %d times after the file system refused it", seen->refused);
	unlink(path);
	munmap(seen, sizeof(*seen));
}

/* f once per file engine, named after it. */
#define PER_ENGINE(f)								\
	{ #f "(threads)", f, NULL, NULL, (void *)&eng_threads },		\
	{ #f "(io_uring)", f, NULL, NULL, (void *)&eng_uring }

int main(void)
{
	const struct CMUnitTest tests[] = {
		PER_ENGINE(test_open_regular),
		cmocka_unit_test(test_default_engine),
		PER_ENGINE(test_range_window),
		cmocka_unit_test(test_open_errors),
		PER_ENGINE(test_ro),
		PER_ENGINE(test_bounds),
		PER_ENGINE(test_short_read_at_eof),
		PER_ENGINE(test_many_iovecs),
		cmocka_unit_test(test_memory_disk),
		PER_ENGINE(test_lock),
		PER_ENGINE(test_lock_other_process),
		cmocka_unit_test(test_refusal_remembered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
