// SPDX-License-Identifier: MIT
/*
 * blk_req_handle() against hand-built virtq_elems over local buffers and
 * a blk_dev with neither transport nor threads (blk_dev_setup_media).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "disk/fault.h"
#include "disk/mem.h"
#include "tests/driver/capture.h"

struct outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

static struct virtq_elem elem;
static struct outhdr hdr;
static uint8_t status;

/* The file b->opts names, opened as blk_dev_create() opens it. */
static void dev_open_file(struct blk_dev *b)
{
	struct disk_conf c;

	blk_disk_conf(&b->opts, &c);
	assert_int_equal(disk_open(&b->disk, &c), 0);
}

/* A blk_dev over args' options and a memory disk (mem_size) or the file. */
static struct blk_dev *dev_new(const char *args, uint64_t mem_size)
{
	struct blk_dev *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	assert_int_equal(blk_opts_parse(args, &b->opts), 0);
	if (mem_size)
		assert_int_equal(disk_open_mem(&b->disk, mem_size, b->opts.ro), 0);
	else
		dev_open_file(b);
	blk_dev_setup_media(b);
	/* A driver that accepted every feature offered (no transport here). */
	b->vp.guest_features = (uint32_t)b->features;
	return b;
}

static void dev_free(struct blk_dev *b)
{
	disk_close(b->disk);
	blk_opts_free(&b->opts);
	free(b);
}

/* ---- what reached the disk: the fault filter's trace ---- */

struct trace_ev {
	enum disk_fault_event ev;
	enum disk_op op;
	uint32_t flags;
	uint64_t offset, len;
	int result;
};

static struct trace_ev trace[256];
static unsigned int trace_len;

static void trace_fn(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		     uint64_t cookie, int result)
{
	struct trace_ev *t;

	assert_true(trace_len < sizeof(trace) / sizeof(trace[0]));
	t = &trace[trace_len++];
	t->ev = ev;
	t->op = io->op;
	t->flags = io->flags;
	t->offset = io->offset;
	t->len = io->len;
	t->result = result;
}

/* Ops the engine underneath was handed (rules that refuse at submit keep them out). */
static unsigned int trace_submits(enum disk_op op)
{
	unsigned int i, n = 0;

	for (i = 0; i < trace_len; i++)
		n += trace[i].ev == DISK_FAULT_SUBMIT && trace[i].op == op;
	return n;
}

/* The last op traced, with its event. */
static const struct trace_ev *trace_last(void)
{
	assert_true(trace_len > 0);
	return &trace[trace_len - 1];
}

/*
 * Give b a fresh memory disk (size, ro) under a fault filter with these
 * rules, traced into trace[] (emptied).
 */
static void dev_set_fault_disk(struct blk_dev *b, uint64_t size, bool ro,
			       const struct disk_fault_rule *rules, unsigned int n)
{
	disk_close(b->disk);
	assert_int_equal(disk_open_mem(&b->disk, size, ro), 0);
	assert_int_equal(disk_fault_wrap(b->disk, rules, n), 0);
	assert_string_equal(disk_props(b->disk)->engine, "fault(memory)");
	disk_fault_set_trace(b->disk, trace_fn, NULL);
	trace_len = 0;
	blk_dev_setup_media(b);
	b->vp.guest_features = (uint32_t)b->features;
}

/* Start a request: a separate 16-byte header descriptor, as Linux sends. */
static void req_start(uint32_t type, uint64_t sector)
{
	memset(&elem, 0, sizeof(elem));
	hdr.type = htole32(type);
	hdr.ioprio = 0;
	hdr.sector = htole64(sector);
	elem.iov[0].iov_base = &hdr;
	elem.iov[0].iov_len = sizeof(hdr);
	elem.nr_out = 1;
	status = 0xee;
}

static void add_out(void *buf, size_t len)
{
	assert_int_equal(elem.nr_in, 0);
	elem.iov[elem.nr_out].iov_base = buf;
	elem.iov[elem.nr_out++].iov_len = len;
}

static void add_in(void *buf, size_t len)
{
	elem.iov[elem.nr_out + elem.nr_in].iov_base = buf;
	elem.iov[elem.nr_out + elem.nr_in++].iov_len = len;
}

/* Append the 1-byte status descriptor and run the request. */
static uint32_t req_run(struct blk_dev *b)
{
	add_in(&status, 1);
	return blk_req_handle(b, &elem);
}

static uint32_t do_io(struct blk_dev *b, uint32_t type, uint64_t sector, void *buf, size_t len)
{
	req_start(type, sector);
	if (type == VIRTIO_BLK_T_OUT)
		add_out(buf, len);
	else
		add_in(buf, len);
	return req_run(b);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 31 + (i >> 8));
}

static void make_file(char *path, size_t size, uint8_t seed)
{
	uint8_t *data = malloc(size);
	int fd;

	strcpy(path, "/tmp/tvmm-blkreq-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fill(data, size, seed);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

static void round_trip(struct blk_dev *b)
{
	uint8_t src[1024], dst[1024];

	fill(src, sizeof(src), 3);
	/* Data split at places that are not sector boundaries. */
	req_start(VIRTIO_BLK_T_OUT, 3);
	add_out(src, 100);
	add_out(src + 100, 700);
	add_out(src + 800, 224);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);

	memset(dst, 0, sizeof(dst));
	req_start(VIRTIO_BLK_T_IN, 3);
	add_in(dst, 1000);
	add_in(dst + 1000, 24);
	assert_int_equal(req_run(b), 1024 + 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_memory_equal(dst, src, sizeof(src));

	/* One sector later reads the second half only. */
	memset(dst, 0, sizeof(dst));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 4, dst, 512), 513);
	assert_memory_equal(dst, src + 512, 512);
}

static void test_round_trip_mem(void **state)
{
	struct blk_dev *b = dev_new("mem", 64 * 1024);

	round_trip(b);
	dev_free(b);
}

/* state: the aio= option ("" for the default engine) */
static void test_round_trip_file(void **state)
{
	const char *aio = *state;
	uint8_t buf[1024], src[1024];
	char path[64], args[128];
	struct blk_dev *b;
	int fd;

	make_file(path, 64 * 1024, 9);
	snprintf(args, sizeof(args), "%s%s", path, aio);
	b = dev_new(args, 0);
	if (strstr(aio, "aio=threads"))
		assert_string_equal(disk_props(b->disk)->engine, "threads");
	assert_int_equal(disk_props(b->disk)->direct, strstr(aio, "direct") != NULL);
	assert_int_equal(blk_capacity(b), 128);
	round_trip(b);
	/* A FLUSH goes through the engine too. */
	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	/* The data is in the file, where the guest put it. */
	fill(src, sizeof(src), 3);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 3 * 512), sizeof(buf));
	assert_memory_equal(buf, src, sizeof(buf));
	close(fd);
	dev_free(b);
	unlink(path);
}

static void test_flush(void **state)
{
	struct blk_dev *b = dev_new("mem", 4096);

	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	req_start(VIRTIO_BLK_T_FLUSH_OUT, 12345);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	dev_free(b);
}

static void test_get_id(void **state)
{
	struct blk_dev *b = dev_new("mem,serial=hello", 4096);
	uint8_t id[32];

	memset(id, 0xaa, sizeof(id));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_GET_ID, 0, id, 20), 21);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_memory_equal(id, "hello\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(id[20], 0xaa);
	dev_free(b);

	b = dev_new("mem,serial=ABCDEFGHIJKLMNOPQRST", 4096);
	/* A full 20 bytes, not NUL-terminated, nothing past it. */
	memset(id, 0xaa, sizeof(id));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), 21);
	assert_memory_equal(id, "ABCDEFGHIJKLMNOPQRST", 20);
	assert_int_equal(id[20], 0xaa);
	/* A short buffer gets what fits, across descriptors. */
	memset(id, 0xaa, sizeof(id));
	req_start(VIRTIO_BLK_T_GET_ID, 0);
	add_in(id, 3);
	add_in(id + 3, 5);
	assert_int_equal(req_run(b), 9);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_memory_equal(id, "ABCDEFGH", 8);
	assert_int_equal(id[8], 0xaa);
	dev_free(b);
}

static void test_default_serial(void **state)
{
	struct blk_dev *b, *b2;
	char path[64], serial[BLK_ID_BYTES];
	uint8_t id[20];

	make_file(path, 4096, 1);
	b = dev_new(path, 0);
	assert_memory_equal(b->serial, "tvmm-", 5);
	assert_int_equal(strnlen(b->serial, sizeof(b->serial)), 13);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), 21);
	assert_memory_equal(id, b->serial, 13);
	/* Stable: the same image opened again (the first one closed: the
	 * image is locked while open) gives the same serial. */
	memcpy(serial, b->serial, sizeof(serial));
	dev_free(b);
	b2 = dev_new(path, 0);
	assert_memory_equal(b2->serial, serial, sizeof(serial));
	dev_free(b2);
	unlink(path);
}

static void test_unsupported(void **state)
{
	static const uint32_t types[] = { 2, 3, 12, 14, 0x80000001, 0xffffffff };
	struct blk_dev *b = dev_new("mem", 4096);
	uint8_t buf[512];
	unsigned int i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		assert_int_equal(do_io(b, types[i], 0, buf, sizeof(buf)), 1);
		assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
	}
	dev_free(b);
}

static void test_bad_sectors(void **state)
{
	struct blk_dev *b = dev_new("mem", 8192);
	uint8_t buf[1024], zero[1024] = { 0 };

	/* No rules: a filter that only watches what reaches the disk. */
	dev_set_fault_disk(b, 8192, false, NULL, 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 15, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_WRITE), 1);
	assert_int_equal(trace[0].offset, 15 * 512);
	assert_int_equal(trace[0].len, 512);
	/* Past capacity, straddling the end, sums that wrap. */
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 16, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 15, buf, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, UINT64_MAX / 512, buf, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, UINT64_MAX, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* Not whole sectors. */
	memset(buf, 0x33, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 500), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(buf[0], 0x33);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 513), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* None of the refused requests reached the disk, not even the layer's checks. */
	assert_int_equal(trace_len, 2);
	assert_int_equal(trace_submits(DISK_OP_WRITE), 1);
	assert_int_equal(trace_submits(DISK_OP_READ), 0);
	assert_int_equal(b->ioerr_warned, 0);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 1024), 1025);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, zero, sizeof(buf));
	dev_free(b);
}

static void test_read_only(void **state)
{
	struct blk_dev *b = dev_new("mem,ro", 4096);
	uint8_t buf[512], zero[512] = { 0 };

	assert_true(b->features & (1ULL << VIRTIO_BLK_F_RO));
	assert_true(disk_props(b->disk)->ro);
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* The device refuses even where the media would not ... */
	dev_set_fault_disk(b, 4096, false, NULL, 0);
	assert_true(b->features & (1ULL << VIRTIO_BLK_F_RO));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_len, 0);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 512), 513);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, zero, 512);
	assert_int_equal(trace_submits(DISK_OP_READ), 1);
	dev_free(b);

	/* ... and where the media is ro, though the option is not. */
	b = dev_new("mem", 4096);
	dev_set_fault_disk(b, 4096, true, NULL, 0);
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_len, 0);
	assert_int_equal(b->ioerr_warned, 0);
	dev_free(b);
}

static void test_range_window(void **state)
{
	uint8_t file[16 * 512], expect[16 * 512], buf[1024];
	char path[64], args[128];
	struct blk_dev *b;
	int fd;

	make_file(path, sizeof(file), 42);
	fill(expect, sizeof(expect), 42);
	snprintf(args, sizeof(args), "%s,range=4/8", path);
	b = dev_new(args, 0);
	assert_int_equal(blk_capacity(b), 8);
	assert_int_equal(le64toh(b->cfg.capacity), 8);
	memset(buf, 0xc3, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 7, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	memcpy(expect + 11 * 512, buf, 512);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 8, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 7, buf, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* Guest sector 0 is file sector 4. */
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 512), 513);
	assert_memory_equal(buf, expect + 4 * 512, 512);
	dev_free(b);

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, file, sizeof(file), 0), sizeof(file));
	close(fd);
	assert_memory_equal(file, expect, sizeof(file));
	unlink(path);
}

/* ---- DISCARD and WRITE_ZEROES ---- */

struct dwz_seg {
	uint64_t sector;
	uint32_t count;
	uint32_t flags;
};

/* One DISCARD/WRITE_ZEROES with n segments in one descriptor; its used length. */
static uint32_t do_dwz(struct blk_dev *b, uint32_t type, const struct dwz_seg *seg,
		       unsigned int n)
{
	static struct dwz_seg le[64];
	unsigned int i;

	assert_true(n <= 64);
	for (i = 0; i < n; i++) {
		le[i].sector = htole64(seg[i].sector);
		le[i].count = htole32(seg[i].count);
		le[i].flags = htole32(seg[i].flags);
	}
	req_start(type, 0);
	add_out(le, n * sizeof(le[0]));
	return req_run(b);
}

static uint8_t dwz_status(struct blk_dev *b, uint32_t type, uint64_t sector, uint32_t count,
			  uint32_t flags)
{
	struct dwz_seg s = { sector, count, flags };

	assert_int_equal(do_dwz(b, type, &s, 1), 1);
	return status;
}

/* Whether sectors [sector, +count) of b read back as byte v. */
static bool reads_as(struct blk_dev *b, uint64_t sector, unsigned int count, uint8_t v)
{
	static uint8_t buf[64 * 512];
	unsigned int i;

	assert_true(count <= 64);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, sector, buf, count * 512), count * 512 + 1);
	for (i = 0; i < count * 512; i++)
		if (buf[i] != v)
			return false;
	return true;
}

static void write_pattern(struct blk_dev *b, uint64_t sector, unsigned int count, uint8_t v)
{
	static uint8_t buf[64 * 512];

	memset(buf, v, count * 512);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, sector, buf, count * 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
}

/*
 * Driver-like: zeroes read back as zeros (with and without unmap), a
 * discard is done, segments are all served, neighbours stay; writethru
 * zeroes are FUA.  Each op the disk sees is the segment asked for.
 */
static void test_dwz_driver_like(void **state)
{
	struct dwz_seg segs[3] = { { 8, 8, 0 }, { 32, 16, VIRTIO_BLK_DWZ_F_UNMAP }, { 100, 4, 0 } };
	struct blk_dev *b = dev_new("mem", 64 << 10);

	dev_set_fault_disk(b, 64 << 10, false, NULL, 0);
	write_pattern(b, 0, 64, 0xa5);
	write_pattern(b, 64, 64, 0xa5);
	trace_len = 0;
	assert_int_equal(do_dwz(b, VIRTIO_BLK_T_WRITE_ZEROES, segs, 3), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_WRITE_ZEROES), 3);
	assert_int_equal(trace[0].offset, 8 * 512);
	assert_int_equal(trace[0].len, 8 * 512);
	assert_int_equal(trace[0].flags & ~DISK_F_ALONE, DISK_F_FUA);
	assert_int_equal(trace[2].offset, 32 * 512);
	assert_int_equal(trace[2].flags & ~DISK_F_ALONE, DISK_F_FUA | DISK_F_UNMAP);
	assert_true(reads_as(b, 0, 8, 0xa5));
	assert_true(reads_as(b, 8, 8, 0));
	assert_true(reads_as(b, 16, 16, 0xa5));
	assert_true(reads_as(b, 32, 16, 0));
	assert_true(reads_as(b, 48, 52, 0xa5));
	assert_true(reads_as(b, 100, 4, 0));
	assert_true(reads_as(b, 104, 24, 0xa5));

	/* DISCARD: not FUA, never UNMAP-flagged; writeback zeroes not FUA either. */
	trace_len = 0;
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 64, 64, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_DISCARD), 1);
	assert_int_equal(trace[0].flags & ~DISK_F_ALONE, 0);
	b->cfg.wce = 1;
	trace_len = 0;
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(trace[0].flags & ~DISK_F_ALONE, 0);
	assert_true(reads_as(b, 0, 8, 0));
	dev_free(b);
}

/*
 * Hostile: every bad segment refuses the whole request before the disk
 * sees anything: reserved flags and unmap on DISCARD are UNSUPP (the
 * spec's words); too many segments, a segment past the capacity, an
 * overflowing one, a count of 0 or past max, a misaligned one (4 KiB
 * sectors), a payload that is no whole number of segments are IOERR.
 */
static void test_dwz_hostile(void **state)
{
	struct dwz_seg many[BLK_DWZ_MAX_SEG + 1];
	struct blk_dev *b = dev_new("mem", 64 << 10);
	uint64_t cap;
	unsigned int i;
	uint8_t junk[24] = { 0 };

	dev_set_fault_disk(b, 64 << 10, false, NULL, 0);
	cap = blk_capacity(b);
	trace_len = 0;
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_DWZ_F_UNMAP),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0x80000000),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, cap, 1, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, cap - 1, 2, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, UINT64_MAX - 3, 8, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, UINT64_MAX / 512, 1, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 0, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, UINT32_MAX, 0),
			 VIRTIO_BLK_S_IOERR);
	for (i = 0; i < BLK_DWZ_MAX_SEG + 1; i++)
		many[i] = (struct dwz_seg){ i, 1, 0 };
	assert_int_equal(do_dwz(b, VIRTIO_BLK_T_DISCARD, many, BLK_DWZ_MAX_SEG + 1), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* One bad segment among good ones: nothing is done. */
	many[BLK_DWZ_MAX_SEG - 1].sector = cap;
	assert_int_equal(do_dwz(b, VIRTIO_BLK_T_WRITE_ZEROES, many, BLK_DWZ_MAX_SEG), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* 24 bytes: one and a half segments; no payload at all. */
	req_start(VIRTIO_BLK_T_DISCARD, 0);
	add_out(junk, sizeof(junk));
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	req_start(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_len, 0);
	/* Refused by the device's own checks, not by the disk layer's (that warns). */
	assert_int_equal(b->ioerr_warned, 0);
	/* All segments good: all 16 done, one disk operation each. */
	many[BLK_DWZ_MAX_SEG - 1].sector = 15;
	assert_int_equal(do_dwz(b, VIRTIO_BLK_T_DISCARD, many, BLK_DWZ_MAX_SEG), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_DISCARD), BLK_DWZ_MAX_SEG);
	dev_free(b);

	/* 4 KiB logical blocks: segments must be whole blocks. */
	b = dev_new("mem,sectorsize=4096", 64 << 10);
	assert_int_equal(le32toh(b->cfg.discard_sector_alignment), 8);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 4, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 8, 4, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_OK);
	dev_free(b);
}

/*
 * Not offered, not done: ro gives IOERR (as OUT), media without it or
 * discard=ignore give UNSUPP; a disk error is IOERR, the media refusing
 * (EOPNOTSUPP) is UNSUPP, and a failed segment stops the request.
 */
static void test_dwz_offers_and_errors(void **state)
{
	static const struct disk_props none = {
		.size = 64 << 10, .logical_block = 512, .physical_block = 512, .fd = -1,
	};
	const struct disk_fault_rule rules[] = {
		{ .ops = 1u << DISK_OP_DISCARD, .offset = 40 * 512, .len = 512, .error = -EIO },
		{ .ops = 1u << DISK_OP_WRITE_ZEROES, .offset = 50 * 512, .len = 512,
		  .error = -EOPNOTSUPP },
	};
	struct dwz_seg two[2] = { { 40, 8, 0 }, { 0, 8, 0 } };
	struct blk_dev *b = dev_new("mem,ro", 64 << 10);

	assert_false(b->features & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_false(b->features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	dev_free(b);

	b = dev_new("mem", 64 << 10);
	disk_close(b->disk);
	assert_int_equal(disk_open_mem_props(&b->disk, &none), 0);
	b->features = 0;
	blk_dev_setup_media(b);
	b->vp.guest_features = ~0u;	/* even a driver that claims it */
	assert_false(b->features & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	dev_free(b);

	b = dev_new("mem,discard=ignore", 64 << 10);
	assert_false(b->features & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_true(b->features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(b->cfg.write_zeroes_may_unmap, 0);
	dev_set_fault_disk(b, 64 << 10, false, NULL, 0);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	/* The guest's unmap flag is dropped: the disk is asked to zero only. */
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, VIRTIO_BLK_DWZ_F_UNMAP),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(trace_last()->flags & DISK_F_UNMAP, 0);
	dev_free(b);

	/* Offered but not accepted by the driver: as if not offered. */
	b = dev_new("mem", 64 << 10);
	b->vp.guest_features &= ~(1u << VIRTIO_BLK_F_DISCARD);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	dev_free(b);

	b = dev_new("mem", 64 << 10);
	dev_set_fault_disk(b, 64 << 10, false, rules, 2);
	assert_int_equal(do_dwz(b, VIRTIO_BLK_T_DISCARD, two, 2), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_submits(DISK_OP_DISCARD), 0);	/* refused at submit; no second */
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 48, 8, 0), VIRTIO_BLK_S_UNSUPP);
	dev_free(b);
}

/* range=: zeroes and discards stay inside the window of the file. */
static void test_dwz_range_window(void **state)
{
	uint8_t file[16 * 512], expect[16 * 512];
	char path[64], args[128];
	struct blk_dev *b;
	int fd;

	make_file(path, sizeof(file), 42);
	fill(expect, sizeof(expect), 42);
	snprintf(args, sizeof(args), "%s,range=4/8", path);
	b = dev_new(args, 0);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	memset(expect + 4 * 512, 0, 8 * 512);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 9, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 7, 2, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 8, 1, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz_status(b, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_OK);
	assert_true(reads_as(b, 0, 8, 0));
	dev_free(b);

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, file, sizeof(file), 0), sizeof(file));
	close(fd);
	assert_memory_equal(file, expect, sizeof(file));
	unlink(path);
}

static void test_framing(void **state)
{
	struct blk_dev *b = dev_new("mem", 4096);
	uint8_t buf[16 + 512 + 1], zero[512] = { 0 }, data[512];
	struct outhdr h = { .type = htole32(VIRTIO_BLK_T_OUT), .sector = htole64(1) };

	/* Header shorter than 16 bytes in its descriptor: IOERR. */
	req_start(VIRTIO_BLK_T_IN, 0);
	elem.iov[0].iov_len = 15;
	add_out((uint8_t *)&hdr + 15, 1);
	add_in(data, 512);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	/* No readable descriptor at all. */
	req_start(VIRTIO_BLK_T_IN, 0);
	elem.nr_out = 0;
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);

	/* No status byte: nothing happens, not even the write. */
	memset(data, 0x99, sizeof(data));
	req_start(VIRTIO_BLK_T_OUT, 0);
	add_out(data, 512);
	assert_int_equal(blk_req_handle(b, &elem), 0);
	/* A zero-length status descriptor is no better. */
	add_in(&status, 0);
	assert_int_equal(blk_req_handle(b, &elem), 0);
	assert_int_equal(status, 0xee);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, data, 512), 513);
	assert_memory_equal(data, zero, 512);

	/* Data in the header's descriptor, status at the end of the data's. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memset(buf + 16, 0x42, 512);
	memset(&elem, 0, sizeof(elem));
	elem.iov[0].iov_base = buf;
	elem.iov[0].iov_len = 16 + 512;
	elem.nr_out = 1;
	add_in(&status, 1);
	assert_int_equal(blk_req_handle(b, &elem), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(elem.iov[0].iov_len, 16 + 512);

	req_start(VIRTIO_BLK_T_IN, 1);
	memset(buf, 0, sizeof(buf));
	add_in(buf, 513);
	assert_int_equal(blk_req_handle(b, &elem), 513);
	assert_int_equal(buf[512], VIRTIO_BLK_S_OK);
	assert_int_equal(buf[0], 0x42);
	assert_int_equal(buf[511], 0x42);
	assert_int_equal(elem.iov[1].iov_len, 513);
	dev_free(b);
}

/* ---- a disk that fails on demand (disk/fault.h) ---- */

/* The warnings on stderr while fn(b) runs. */
static const char *capture_log(struct capture *c, void (*fn)(struct blk_dev *), struct blk_dev *b)
{
	const char *log;

	assert_int_equal(capture_start(c, false), 0);
	fn(b);
	log = capture_end(c);
	assert_non_null(log);
	return log;
}

static void disk_errors_run(struct blk_dev *b)
{
	static const int errs[] = { -EIO, -ENOSPC, -EROFS };
	/* The media lets the first op through, then does the rest and reports them failed. */
	static const struct disk_fault_rule after_rule = {
		.ops = 1u << DISK_OP_READ | 1u << DISK_OP_WRITE,
		.skip = 1,
		.error = -EIO,
		.after = true,
	};
	static const struct disk_fault_rule eio_rule = { .error = -EIO };
	uint8_t buf[1024], src[1024];
	unsigned int i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		/* Every op, FLUSH included, refused before the media saw it. */
		struct disk_fault_rule all = { .error = errs[i] };

		dev_set_fault_disk(b, 4096, false, &all, 1);
		assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 1024), 1);
		assert_int_equal(status, VIRTIO_BLK_S_IOERR);
		assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 1024), 1);
		assert_int_equal(status, VIRTIO_BLK_S_IOERR);
		req_start(VIRTIO_BLK_T_FLUSH, 0);
		assert_int_equal(req_run(b), 1);
		assert_int_equal(status, VIRTIO_BLK_S_IOERR);
		assert_int_equal(trace_len, 3);
		assert_int_equal(trace[0].ev, DISK_FAULT_DONE_NOW);
		assert_int_equal(trace[0].result, errs[i]);
		assert_int_equal(trace[2].op, DISK_OP_FLUSH);
	}

	/*
	 * An op the media did but reported failed is no success either: an
	 * IN whose data arrived still reports only its status byte.
	 */
	dev_set_fault_disk(b, 4096, false, &after_rule, 1);
	fill(src, sizeof(src), 77);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, src, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 0, buf, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_memory_equal(buf, src, sizeof(buf));
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_submits(DISK_OP_READ), 1);
	assert_int_equal(trace_submits(DISK_OP_WRITE), 2);

	/* A media that fails nothing: OK again. */
	dev_set_fault_disk(b, 4096, false, NULL, 0);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 1024), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);

	dev_set_fault_disk(b, 4096, false, &eio_rule, 1);
	for (i = 0; i < 50; i++) {
		assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, i % 8, buf, 512), 1);
		assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	}
}

static void one_ioerr_run(struct blk_dev *b)
{
	static const struct disk_fault_rule eio_rule = { .error = -EIO };
	uint8_t buf[512];

	dev_set_fault_disk(b, 4096, false, &eio_rule, 1);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_IN, 3, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
}

static void test_disk_errors(void **state)
{
	struct blk_dev *b = dev_new("mem", 4096), *b2 = dev_new("other", 4096);
	struct capture cap;
	const char *log;

	/* Capture the warnings: a failing disk must not flood the log. */
	log = capture_log(&cap, disk_errors_run, b);
	assert_int_equal(str_count(log, "\n"), 10);
	assert_non_null(strstr(log, "warning: virtio-blk: 'mem': read of 1024 bytes at sector 0 "
				    "failed: Input/output error\n"));
	assert_non_null(strstr(log, "'mem': write of 1024 bytes at sector 0 "
				    "failed: No space left on device\n"));
	assert_non_null(strstr(log, "'mem': flush failed: Read-only file system\n"));
	assert_non_null(strstr(log, "further I/O errors not reported"));
	assert_true(b->ioerr_warned > 10);

	/* The limit is the device's: another one still says what failed on it. */
	log = capture_log(&cap, one_ioerr_run, b2);
	assert_int_equal(str_count(log, "\n"), 1);
	assert_non_null(strstr(log, "warning: virtio-blk: 'other': read of 512 bytes at sector 3 failed: "));
	assert_null(strstr(log, "further I/O errors not reported"));
	assert_int_equal(b2->ioerr_warned, 1);
	dev_free(b2);
	dev_free(b);
}

/*
 * fdatasync reports a write-back error once: after a failed flush the next
 * one may "succeed" although data was lost.  The device must not say OK.
 */
static void test_flush_error_is_sticky(void **state)
{
	/* The second flush fails; the ones after it succeed at the media. */
	static const struct disk_fault_rule second_flush = {
		.ops = 1u << DISK_OP_FLUSH, .skip = 1, .count = 1, .error = -EIO,
	};
	/* The first flush, disk_flush_sync() included, fails. */
	static const struct disk_fault_rule first_flush = {
		.ops = 1u << DISK_OP_FLUSH, .count = 1, .error = -EIO,
	};
	struct blk_dev *b = dev_new("mem,writeback", 4096);
	uint8_t buf[512] = { 0 };
	int saved = dup(STDERR_FILENO);
	int null = open("/dev/null", O_WRONLY);

	assert_true(saved >= 0 && null >= 0);
	assert_true(dup2(null, STDERR_FILENO) >= 0);	/* expected warnings */
	dev_set_fault_disk(b, 4096, false, &second_flush, 1);

	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);

	/* the media lost a write-back */
	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);

	/* The error was consumed by that flush: the media says OK now, the device does not. */
	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_last()->op, DISK_OP_FLUSH);
	assert_int_equal(trace_last()->ev, DISK_FAULT_DONE_NOW);
	assert_int_equal(trace_last()->result, 0);
	req_start(VIRTIO_BLK_T_FLUSH_OUT, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_submits(DISK_OP_FLUSH), 3);
	/* Reads and writes go on; only the durability promise is withdrawn. */
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_not_equal(b->flush_err, 0);
	dev_free(b);

	/* A failed flush of the device's own (reset, leaving writeback) is sticky too. */
	b = dev_new("mem,writeback", 4096);
	dev_set_fault_disk(b, 4096, false, &first_flush, 1);
	assert_int_equal(blk_flush_media(b, "test flush"), -EIO);
	assert_int_equal(trace_last()->ev, DISK_FAULT_FLUSH_SYNC);
	assert_int_equal(b->flush_err, -EIO);
	req_start(VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(req_run(b), 1);
	assert_int_equal(status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(trace_last()->result, 0);
	dev_free(b);

	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(null);
}

/* A chain virtq_pop() refused: IOERR at its tail, if it has one. */
static void test_refuse(void **state)
{
	uint8_t tail[4] = { 0xee, 0xee, 0xee, 0xee };

	memset(&elem, 0, sizeof(elem));
	elem.tail = &tail[3];
	assert_int_equal(blk_req_refuse(&elem), 1);
	assert_int_equal(tail[3], VIRTIO_BLK_S_IOERR);
	assert_int_equal(tail[0], 0xee);
	assert_int_equal(tail[2], 0xee);

	/* No tail: nothing written, and nothing to report. */
	memset(&elem, 0, sizeof(elem));
	tail[3] = 0xee;
	assert_int_equal(blk_req_refuse(&elem), 0);
	assert_int_equal(tail[3], 0xee);
}

static void test_cache_mode_and_config(void **state)
{
	struct blk_dev *b = dev_new("mem,sectorsize=512/4096,qsize=128", 1 << 20);
	uint8_t buf[512];

	assert_int_equal(le64toh(b->cfg.capacity), 2048);
	assert_int_equal(le32toh(b->cfg.seg_max), 126);
	assert_int_equal(le32toh(b->cfg.blk_size), 512);
	assert_int_equal(b->cfg.physical_block_exp, 3);
	assert_int_equal(le16toh(b->cfg.min_io_size), 1);
	assert_int_equal(le32toh(b->cfg.opt_io_size), 0);
	assert_int_equal(b->cfg.wce, 0);
	assert_int_equal(b->features, (1ULL << VIRTIO_BLK_F_SEG_MAX) |
			 (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_TOPOLOGY) |
			 (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |
			 (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) |
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	assert_int_equal(le32toh(b->cfg.max_discard_seg), BLK_DWZ_MAX_SEG);
	assert_int_equal(le32toh(b->cfg.max_write_zeroes_seg), BLK_DWZ_MAX_SEG);
	assert_int_equal(le32toh(b->cfg.max_discard_sectors), BLK_DWZ_MAX_SECTORS);
	assert_int_equal(le32toh(b->cfg.discard_sector_alignment), 1);
	assert_int_equal(b->cfg.write_zeroes_may_unmap, 1);

	/* Writes are FUA (durable before completion) exactly when the cache is writethru. */
	memset(buf, 0, sizeof(buf));
	dev_set_fault_disk(b, 1 << 20, false, NULL, 0);
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_WRITE), 1);
	assert_int_equal(trace_last()->flags, DISK_F_FUA);
	b->cfg.wce = 1;
	assert_int_equal(do_io(b, VIRTIO_BLK_T_OUT, 0, buf, 512), 1);
	assert_int_equal(status, VIRTIO_BLK_S_OK);
	assert_int_equal(trace_submits(DISK_OP_WRITE), 2);
	assert_int_equal(trace_last()->flags, 0);
	dev_free(b);

	b = dev_new("mem,writeback,sectorsize=4096", 1 << 20);
	assert_int_equal(b->cfg.wce, 1);
	assert_int_equal(le32toh(b->cfg.blk_size), 4096);
	assert_int_equal(b->cfg.physical_block_exp, 0);
	assert_int_equal(le32toh(b->cfg.seg_max), BLK_DEFAULT_QSIZE - 2);
	dev_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_mem),
		{ "test_round_trip_file", test_round_trip_file, NULL, NULL, (void *)"" },
		{ "test_round_trip_file(aio=threads)", test_round_trip_file, NULL, NULL,
		  (void *)",aio=threads" },
		{ "test_round_trip_file(direct)", test_round_trip_file, NULL, NULL,
		  (void *)",direct" },
		{ "test_round_trip_file(direct,aio=threads)", test_round_trip_file, NULL, NULL,
		  (void *)",direct,aio=threads" },
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_get_id),
		cmocka_unit_test(test_default_serial),
		cmocka_unit_test(test_flush_error_is_sticky),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_bad_sectors),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_range_window),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_disk_errors),
		cmocka_unit_test(test_cache_mode_and_config),
		cmocka_unit_test(test_refuse),
		cmocka_unit_test(test_dwz_driver_like),
		cmocka_unit_test(test_dwz_hostile),
		cmocka_unit_test(test_dwz_offers_and_errors),
		cmocka_unit_test(test_dwz_range_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
