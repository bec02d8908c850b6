// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/virtio-blk/disk.h"

static char errbuf[4096];
static int saved_stderr = -1;
static FILE *errfile;

static void capture_start(void)
{
	errfile = tmpfile();
	assert_non_null(errfile);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(errfile), STDERR_FILENO) >= 0);
}

static void capture_end(void)
{
	size_t n;

	assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	rewind(errfile);
	n = fread(errbuf, 1, sizeof(errbuf) - 1, errfile);
	errbuf[n] = 0;
	fclose(errfile);
}

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

/* Open path with opts args appended ("" for none); returns disk_open's result. */
static int open_with(struct disk *d, struct blk_opts *o, const char *path, const char *opts)
{
	char args[512];
	int ret;

	snprintf(args, sizeof(args), "%s%s", path, opts);
	assert_int_equal(blk_opts_parse(args, o), 0);
	capture_start();
	ret = disk_open(d, o);
	capture_end();
	return ret;
}

static ssize_t rd(struct disk *d, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return d->ops->preadv(d, &iov, 1, off);
}

static ssize_t wr(struct disk *d, const void *buf, size_t len, uint64_t off, bool sync)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return d->ops->pwritev(d, &iov, 1, off, sync);
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
	char path[64];
	uint8_t buf[1024];
	struct blk_opts o;
	struct disk d;
	int i;

	make_file(path, 64 * 1024);
	assert_int_equal(open_with(&d, &o, path, ""), 0);
	assert_int_equal(d.size, 64 * 1024);
	assert_int_equal(d.start, 0);
	assert_false(d.ro);
	assert_false(d.is_blockdev);
	assert_string_equal(d.path, path);
	assert_int_equal(fcntl(d.fd, F_GETFL) & O_ACCMODE, O_RDWR);
	assert_true(fcntl(d.fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(rd(&d, buf, sizeof(buf), 4096), sizeof(buf));
	for (i = 0; i < (int)sizeof(buf); i++)
		assert_int_equal(buf[i], pattern(4096 + i));
	assert_int_equal(d.ops->flush(&d), 0);
	disk_close(&d);
	assert_null(d.ops);
	blk_opts_free(&o);
	unlink(path);
}

static void test_range_window(void **state)
{
	uint8_t buf[512], out[512];
	char path[64];
	struct blk_opts o;
	struct disk d;
	int i;

	make_file(path, 32 * 1024);
	assert_int_equal(open_with(&d, &o, path, ",range=2/4"), 0);
	assert_int_equal(d.start, 1024);
	assert_int_equal(d.size, 2048);
	/* Offset 0 of the disk is the byte at LBA*L in the file. */
	assert_int_equal(rd(&d, buf, 512, 0), 512);
	for (i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(1024 + i));
	disk_close(&d);
	blk_opts_free(&o);

	/* range= counts logical sectors of the configured size. */
	assert_int_equal(open_with(&d, &o, path, ",sectorsize=4096,range=1/2"), 0);
	assert_int_equal(d.start, 4096);
	assert_int_equal(d.size, 8192);
	/* Writes at the window's last sector land at the right file offset. */
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(wr(&d, buf, 512, 8192 - 512, true), 512);
	file_read(path, out, 512, 4096 + 8192 - 512);
	assert_memory_equal(out, buf, 512);
	/* ... and not past it: the first byte after the window is intact. */
	file_read(path, out, 1, 4096 + 8192);
	assert_int_equal(out[0], pattern(4096 + 8192));
	disk_close(&d);
	blk_opts_free(&o);
	unlink(path);
}

static void test_open_errors(void **state)
{
	char path[64], dir[64];
	struct blk_opts o;
	struct disk d;
	int fd;

	assert_int_equal(open_with(&d, &o, "/nonexistent/tvmm.img", ""), -ENOENT);
	assert_non_null(strstr(errbuf, "virtio-blk: cannot open image '/nonexistent/tvmm.img': "));
	assert_int_equal(d.fd, -1);
	blk_opts_free(&o);

	strcpy(dir, "/tmp/tvmm-dir-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* A directory cannot even be opened O_RDWR; read-only it opens, then fails fstat's test. */
	assert_true(open_with(&d, &o, dir, "") < 0);
	assert_non_null(strstr(errbuf, dir));
	blk_opts_free(&o);
	assert_int_equal(open_with(&d, &o, dir, ",ro"), -EINVAL);
	assert_non_null(strstr(errbuf, "is neither a regular file nor a block device"));
	blk_opts_free(&o);
	rmdir(dir);

	assert_int_equal(open_with(&d, &o, "/dev/null", ""), -EINVAL);
	assert_non_null(strstr(errbuf, "virtio-blk: '/dev/null' is neither a regular file nor a block device"));
	blk_opts_free(&o);

	make_file(path, 1000);
	assert_int_equal(open_with(&d, &o, path, ""), -EINVAL);
	assert_non_null(strstr(errbuf, "size 1000 is not a multiple of sectorsize 512"));
	blk_opts_free(&o);
	unlink(path);

	make_file(path, 6144);
	assert_int_equal(open_with(&d, &o, path, ",sectorsize=4096"), -EINVAL);
	assert_non_null(strstr(errbuf, "size 6144 is not a multiple of sectorsize 4096"));
	blk_opts_free(&o);
	/* A ragged tail is fine when the window stays clear of it. */
	assert_int_equal(open_with(&d, &o, path, ",sectorsize=4096,range=0/1"), 0);
	assert_int_equal(d.size, 4096);
	disk_close(&d);
	blk_opts_free(&o);
	assert_int_equal(open_with(&d, &o, path, ",range=10/3"), -EINVAL);
	assert_non_null(strstr(errbuf, "virtio-blk: range=10/3: window ends at byte 6656, past the end of '"));
	assert_non_null(strstr(errbuf, "(6144 bytes)"));
	blk_opts_free(&o);
	unlink(path);

	strcpy(path, "/tmp/tvmm-empty-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_with(&d, &o, path, ""), -EINVAL);
	assert_non_null(strstr(errbuf, "is empty"));
	blk_opts_free(&o);
	unlink(path);
}

static void test_ro(void **state)
{
	uint8_t buf[512], out[512];
	char path[64];
	struct blk_opts o;
	struct disk d;

	make_file(path, 8192);
	assert_int_equal(open_with(&d, &o, path, ",ro"), 0);
	assert_true(d.ro);
	assert_int_equal(fcntl(d.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(wr(&d, buf, 512, 0, false), -EROFS);
	assert_int_equal(wr(&d, buf, 512, 0, true), -EROFS);
	/* Even past the ro check, the fd itself refuses. */
	d.ro = false;
	assert_true(wr(&d, buf, 512, 0, false) < 0);
	file_read(path, out, 512, 0);
	assert_int_equal(out[0], pattern(0));
	assert_int_equal(out[511], pattern(511));
	assert_int_equal(rd(&d, out, 512, 512), 512);
	disk_close(&d);
	blk_opts_free(&o);
	unlink(path);
}

static void test_bounds(void **state)
{
	uint8_t buf[1024];
	char path[64];
	struct blk_opts o;
	struct disk d;

	make_file(path, 8192);
	assert_int_equal(open_with(&d, &o, path, ",range=4/8"), 0);
	assert_int_equal(d.size, 4096);
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(wr(&d, buf, 512, 4096 - 512, false), 512);
	assert_int_equal(rd(&d, buf, 512, 4096 - 512), 512);
	assert_int_equal(rd(&d, buf, 0, 4096), 0);
	/* One byte past the window, overflowing sums, a huge offset. */
	assert_int_equal(rd(&d, buf, 512, 4096 - 511), -EIO);
	assert_int_equal(wr(&d, buf, 512, 4096 - 511, false), -EIO);
	assert_int_equal(wr(&d, buf, 1024, 4096 - 512, true), -EIO);
	assert_int_equal(rd(&d, buf, 512, 4096), -EIO);
	assert_int_equal(rd(&d, buf, 512, UINT64_MAX - 100), -EIO);
	assert_int_equal(wr(&d, buf, 512, UINT64_MAX - 100, false), -EIO);
	disk_close(&d);
	blk_opts_free(&o);
	/* The refused writes touched nothing after the window. */
	assert_int_equal(open_with(&d, &o, path, ""), 0);
	assert_int_equal(rd(&d, buf, 512, 8192 - 512), 512);
	assert_int_equal(buf[0], pattern(8192 - 512));
	assert_int_equal(rd(&d, buf, 512, 4096 - 512), 512);
	assert_int_equal(buf[0], pattern(4096 - 512));
	disk_close(&d);
	blk_opts_free(&o);
	unlink(path);
}

static void test_short_read_at_eof(void **state)
{
	uint8_t buf[512];
	char path[64];
	struct blk_opts o;
	struct disk d;

	make_file(path, 8192);
	assert_int_equal(open_with(&d, &o, path, ""), 0);
	/* The file shrinks behind our back: the read hits EOF halfway. */
	assert_int_equal(truncate(path, 8192 - 256), 0);
	assert_int_equal(rd(&d, buf, 512, 8192 - 512), -EIO);
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(rd(&d, buf, 512, 8192 - 512), -EIO);
	assert_int_equal(rd(&d, buf, 512, 0), 512);
	disk_close(&d);
	blk_opts_free(&o);
	unlink(path);
}

/* More segments than one preadv/pwritev takes, split at odd places. */
static void test_many_iovecs(void **state)
{
	enum { NR = IOV_MAX + 300, SEG = 16 };
	static struct iovec iov[NR];
	static uint8_t src[NR * SEG], dst[NR * SEG];
	char path[64];
	struct blk_opts o;
	struct disk d;
	int i;

	make_file(path, 64 * 1024);
	assert_int_equal(open_with(&d, &o, path, ""), 0);
	for (i = 0; i < NR * SEG; i++)
		src[i] = (uint8_t)(i * 13 + 5);
	for (i = 0; i < NR; i++) {
		iov[i].iov_base = src + i * SEG;
		iov[i].iov_len = SEG;
	}
	assert_int_equal(d.ops->pwritev(&d, iov, NR, 512, true), NR * SEG);
	assert_int_equal(d.ops->pwritev(&d, iov, NR, 512, false), NR * SEG);
	for (i = 0; i < NR; i++)
		iov[i].iov_base = dst + i * SEG;
	/* Some empty segments must be skipped, not stall the loop. */
	iov[5].iov_len = 0;
	iov[NR - 1].iov_len = 0;
	assert_int_equal(d.ops->preadv(&d, iov, NR, 512), (NR - 2) * SEG);
	assert_memory_equal(dst, src, 5 * SEG);
	assert_memory_equal(dst + 6 * SEG, src + 5 * SEG, (NR - 7) * SEG);
	file_read(path, dst, NR * SEG, 512);
	assert_memory_equal(dst, src, NR * SEG);
	disk_close(&d);
	blk_opts_free(&o);
	unlink(path);
}

static void test_memory_disk(void **state)
{
	uint8_t buf[1024], zero[1024] = { 0 };
	struct disk d;

	assert_int_equal(disk_open_mem(&d, 0), -EINVAL);
	assert_int_equal(disk_open_mem(&d, 1000), -EINVAL);
	assert_int_equal(disk_open_mem(&d, 8192), 0);
	assert_int_equal(d.size, 8192);
	assert_int_equal(rd(&d, buf, sizeof(buf), 0), sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(wr(&d, buf, 512, 8192 - 512, true), 512);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rd(&d, buf, 512, 8192 - 512), 512);
	assert_int_equal(buf[0], 0x77);
	assert_int_equal(buf[511], 0x77);
	assert_int_equal(rd(&d, buf, 1024, 8192 - 512), -EIO);
	assert_int_equal(wr(&d, buf, 512, 8192, false), -EIO);
	assert_int_equal(rd(&d, buf, 16, UINT64_MAX - 8), -EIO);
	assert_int_equal(d.ops->flush(&d), 0);
	d.ro = true;
	assert_int_equal(wr(&d, buf, 512, 0, false), -EROFS);
	assert_int_equal(rd(&d, buf, 512, 0), 512);
	assert_memory_equal(buf, zero, 512);
	disk_close(&d);
	assert_null(d.priv);
}

/* The lock message, exactly one line, for path and the holder's kind. */
static void assert_locked_msg(const char *path, const char *kind)
{
	char want[256];

	snprintf(want, sizeof(want),
		 "virtio-blk: '%s' is in use by another process (locked for %s)\n", path, kind);
	assert_string_equal(errbuf + strlen("tinyvmm: error: "), want);
}

/*
 * OFD locks belong to the open file description: two disk_open()s of one
 * image in this process conflict just as two processes would.
 */
static void test_lock(void **state)
{
	struct blk_opts o1, o2, o3;
	struct disk d1, d2, d3;
	char path[64];

	make_file(path, 64 * 1024);

	/* rw + rw */
	assert_int_equal(open_with(&d1, &o1, path, ""), 0);
	assert_int_equal(open_with(&d2, &o2, path, ""), -EBUSY);
	assert_locked_msg(path, "writing");
	assert_int_equal(d2.fd, -1);
	blk_opts_free(&o2);
	/* rw + ro */
	assert_int_equal(open_with(&d2, &o2, path, ",ro"), -EBUSY);
	assert_locked_msg(path, "writing");
	blk_opts_free(&o2);
	/* A window inside a whole-file write lock conflicts too. */
	assert_int_equal(open_with(&d2, &o2, path, ",range=8/8"), -EBUSY);
	blk_opts_free(&o2);
	/* The lock goes away with the fd. */
	disk_close(&d1);
	blk_opts_free(&o1);
	assert_int_equal(open_with(&d1, &o1, path, ""), 0);
	disk_close(&d1);
	blk_opts_free(&o1);

	/* ro + ro share; ro + rw conflicts. */
	assert_int_equal(open_with(&d1, &o1, path, ",ro"), 0);
	assert_int_equal(open_with(&d2, &o2, path, ",ro"), 0);
	assert_int_equal(open_with(&d3, &o3, path, ""), -EBUSY);
	assert_locked_msg(path, "reading");
	blk_opts_free(&o3);
	assert_int_equal(open_with(&d3, &o3, path, ",range=0/4"), -EBUSY);
	assert_locked_msg(path, "reading");
	blk_opts_free(&o3);
	disk_close(&d1);
	blk_opts_free(&o1);
	assert_int_equal(open_with(&d3, &o3, path, ""), -EBUSY);
	blk_opts_free(&o3);
	disk_close(&d2);
	blk_opts_free(&o2);

	/* Windows: disjoint ones are independent, touching ones too. */
	assert_int_equal(open_with(&d1, &o1, path, ",range=0/8"), 0);
	assert_int_equal(open_with(&d2, &o2, path, ",range=8/8"), 0);
	assert_int_equal(open_with(&d3, &o3, path, ",range=16/8,ro"), 0);
	disk_close(&d3);
	blk_opts_free(&o3);
	/* Overlapping by one sector: rw and ro both refused. */
	assert_int_equal(open_with(&d3, &o3, path, ",range=7/2"), -EBUSY);
	assert_locked_msg(path, "writing");
	blk_opts_free(&o3);
	assert_int_equal(open_with(&d3, &o3, path, ",range=15/1,ro"), -EBUSY);
	blk_opts_free(&o3);
	/* range= counts logical sectors: 4096-byte sector 1 is bytes 4096-8191. */
	assert_int_equal(open_with(&d3, &o3, path, ",sectorsize=4096,range=1/1"), -EBUSY);
	blk_opts_free(&o3);
	assert_int_equal(open_with(&d3, &o3, path, ",sectorsize=4096,range=2/1"), 0);
	disk_close(&d3);
	blk_opts_free(&o3);
	/* The whole file overlaps every window. */
	assert_int_equal(open_with(&d3, &o3, path, ",ro"), -EBUSY);
	blk_opts_free(&o3);
	disk_close(&d1);
	blk_opts_free(&o1);
	/* Only the window at 8 is still held. */
	assert_int_equal(open_with(&d3, &o3, path, ",range=0/8"), 0);
	disk_close(&d3);
	blk_opts_free(&o3);
	disk_close(&d2);
	blk_opts_free(&o2);
	unlink(path);
}

/* A lock held through another process's own fd is honoured the same way. */
static void test_lock_other_process(void **state)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	int go[2], done[2], fd, st;
	struct blk_opts o;
	struct disk d;
	char path[64], c;
	pid_t pid;

	make_file(path, 8192);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(path, O_RDONLY);
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
			_exit(1);
		if (write(go[1], "x", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_int_equal(open_with(&d, &o, path, ""), -EBUSY);
	assert_locked_msg(path, "reading");
	blk_opts_free(&o);
	assert_int_equal(open_with(&d, &o, path, ",ro"), 0);
	disk_close(&d);
	blk_opts_free(&o);
	assert_int_equal(write(done[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The holder exited: its lock went with it. */
	assert_int_equal(open_with(&d, &o, path, ""), 0);
	disk_close(&d);
	blk_opts_free(&o);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_regular),
		cmocka_unit_test(test_range_window),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_ro),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_short_read_at_eof),
		cmocka_unit_test(test_many_iovecs),
		cmocka_unit_test(test_memory_disk),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_lock_other_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
