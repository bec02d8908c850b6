// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lib/io_bus.h"

#define MAX_LOG	8

/* One device access as the device saw it. */
struct op {
	bool is_write;
	uint16_t off;
	unsigned int size;
	uint32_t val;
};

struct fake {
	uint16_t last_off;
	unsigned int last_size;
	uint32_t last_val;
	int reads, writes;
	struct op log[MAX_LOG];
	int nr_log;
	struct io_bus *bus;	/* for the re-entrancy test */
};

static void fake_log(struct fake *f, bool is_write, uint16_t off, unsigned int size,
		     uint32_t val)
{
	if (f->nr_log < MAX_LOG)
		f->log[f->nr_log] = (struct op) { is_write, off, size, val };
	f->nr_log++;
}

static uint32_t fake_read(void *opaque, uint16_t off, unsigned int size)
{
	struct fake *f = opaque;

	f->last_off = off;
	f->last_size = size;
	f->reads++;
	fake_log(f, false, off, size, 0);
	return 0xa5a5a500u | (off & 0xff);
}

static void fake_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct fake *f = opaque;

	f->last_off = off;
	f->last_size = size;
	f->last_val = val;
	f->writes++;
	fake_log(f, true, off, size, val);
}

static void assert_op(const struct fake *f, int i, bool is_write, uint16_t off,
		      unsigned int size, uint32_t val)
{
	assert_true(i < f->nr_log && i < MAX_LOG);
	assert_int_equal(f->log[i].is_write, is_write);
	assert_int_equal(f->log[i].off, off);
	assert_int_equal(f->log[i].size, size);
	if (is_write)
		assert_int_equal(f->log[i].val, val);
}

static const struct io_ops fake_ops = { .read = fake_read, .write = fake_write };

static void test_dispatch(void **state)
{
	struct io_bus bus;
	struct fake f = { 0 };
	uint32_t v = 0;
	uint8_t b;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0x3f8, 8, &fake_ops, &f, "f"), 0);

	v = 0x41;
	assert_true(io_bus_access(&bus, 0x3f8, true, &v, 1));
	assert_int_equal(f.last_off, 0);
	assert_int_equal(f.last_val, 0x41);

	assert_true(io_bus_access(&bus, 0x3fd, false, &b, 1));
	assert_int_equal(f.last_off, 5);
	assert_int_equal(b, 0x05);	/* low byte only */
	assert_int_equal(bus.range[0].accesses, 2);

	/* A dword at 0x3fe crosses the end of the range: nobody's. */
	v = 0;
	assert_false(io_bus_access(&bus, 0x3fe, false, &v, 4));
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(bus.unclaimed, 1);
	io_bus_destroy(&bus);
}

static void test_unclaimed_reads_ones(void **state)
{
	struct io_bus bus;
	uint16_t w = 0;

	io_bus_init(&bus);
	assert_false(io_bus_access(&bus, 0x1234, false, &w, 2));
	assert_int_equal(w, 0xffff);
	io_bus_destroy(&bus);
}

static void test_overlap_and_unregister(void **state)
{
	struct io_bus bus;
	struct fake f = { 0 }, g = { 0 };

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0x100, 0x10, &fake_ops, &f, "f"), 0);
	assert_int_equal(io_bus_register(&bus, 0x10f, 1, &fake_ops, &g, "g"), -EBUSY);
	assert_int_equal(io_bus_register(&bus, 0xf8, 0x10, &fake_ops, &g, "g"), -EBUSY);
	assert_int_equal(io_bus_register(&bus, 0x110, 1, &fake_ops, &g, "g"), 0);
	/* Length: 1 to 64 KiB. */
	assert_int_equal(io_bus_register(&bus, 0x200, 0, &fake_ops, &g, "g"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, 0x200, 0x10001, &fake_ops, &g, "g"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, 0x10000, 0x10000, &fake_ops, &g, "g"), 0);
	assert_int_equal(bus.nr, 3);
	assert_int_equal(io_bus_unregister(&bus, 0x100, &g), -ENOENT);
	assert_int_equal(io_bus_unregister(&bus, 0x100, &f), 0);
	assert_int_equal(io_bus_register(&bus, 0x108, 4, &fake_ops, &g, "g"), 0);
	io_bus_destroy(&bus);
}

/* A device that moves itself from inside its own write (a BAR move). */
static void moving_write(void *opaque, uint16_t off, unsigned int size, uint32_t val);
static const struct io_ops moving_ops = { .read = fake_read, .write = moving_write };

static void moving_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct fake *f = opaque;

	f->writes++;
	assert_int_equal(io_bus_unregister(f->bus, 0x200, f), 0);
	assert_int_equal(io_bus_register(f->bus, (uint16_t)val, 4, &moving_ops, f, "m"), 0);
}

static void test_reentrant_register(void **state)
{
	struct io_bus bus;
	struct fake f = { .bus = &bus };
	uint32_t v = 0x300;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0x200, 4, &moving_ops, &f, "m"), 0);
	assert_true(io_bus_access(&bus, 0x200, true, &v, 2));
	assert_int_equal(f.writes, 1);
	assert_false(io_bus_access(&bus, 0x200, false, &v, 1));
	assert_true(io_bus_access(&bus, 0x302, false, &v, 1));
	io_bus_destroy(&bus);
}

/*
 * MMIO addresses: ranges above 4 GiB, and ones that differ only in bits
 * above 31 or 15, are told apart.
 */
static void test_64bit_addresses(void **state)
{
	struct io_bus bus;
	struct fake lo = { 0 }, hi = { 0 };
	uint32_t v;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0xe0000000u, 0x1000, &fake_ops, &lo, "lo"), 0);
	assert_int_equal(io_bus_register(&bus, 0x1e0000000ull, 0x1000, &fake_ops, &hi, "hi"), 0);
	/* Overlap is checked on the whole address, not a truncated one. */
	assert_int_equal(io_bus_register(&bus, 0x1e0000800ull, 0x1000, &fake_ops, &hi, "x"),
			 -EBUSY);

	v = 0;
	assert_true(io_bus_access(&bus, 0x1e0000010ull, false, &v, 4));
	assert_int_equal(v, 0xa5a5a510u);
	assert_int_equal(hi.reads, 1);
	assert_int_equal(hi.last_off, 0x10);
	assert_int_equal(lo.reads, 0);

	v = 0x1234;
	assert_true(io_bus_access(&bus, 0xe0000ffeu, true, &v, 2));
	assert_int_equal(lo.last_off, 0xffe);
	assert_int_equal(lo.last_val, 0x1234);
	assert_int_equal(hi.writes, 0);

	/* Same low 32 bits as a range, different high ones: nobody's. */
	assert_false(io_bus_access(&bus, 0x2e0000010ull, false, &v, 4));
	assert_false(io_bus_access(&bus, 0xe0010010u, false, &v, 4));
	assert_int_equal(v, 0xffffffffu);
	assert_int_equal(lo.reads + hi.reads, 1);
	assert_int_equal(bus.unclaimed, 2);

	assert_int_equal(io_bus_unregister(&bus, 0xe0000000u, &hi), -ENOENT);
	assert_int_equal(io_bus_unregister(&bus, 0x1e0000000ull, &hi), 0);
	assert_false(io_bus_access(&bus, 0x1e0000010ull, false, &v, 4));
	io_bus_destroy(&bus);
}

/* A range ending at the very last address: nothing may wrap to 0. */
static void test_top_of_address_space(void **state)
{
	const uint64_t top = UINT64_MAX - 0xfff;	/* the last 4 KiB */
	struct io_bus bus;
	struct fake f = { 0 }, g = { 0 };
	uint8_t b;
	uint32_t v;
	uint64_t q;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, top, 0x1001, &fake_ops, &f, "f"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, UINT64_MAX, 2, &fake_ops, &f, "f"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, top, 0x1000, &fake_ops, &f, "f"), 0);

	/* Overlaps at the top, where base + len would be 0. */
	assert_int_equal(io_bus_register(&bus, UINT64_MAX, 1, &fake_ops, &g, "g"), -EBUSY);
	assert_int_equal(io_bus_register(&bus, UINT64_MAX - 0x10, 8, &fake_ops, &g, "g"), -EBUSY);
	assert_int_equal(io_bus_register(&bus, top - 0x10, 0x11, &fake_ops, &g, "g"), -EBUSY);
	/* Neither does the top range look like it covers address 0. */
	assert_int_equal(io_bus_register(&bus, 0, 0x10000, &fake_ops, &g, "g"), 0);
	assert_int_equal(io_bus_register(&bus, top - 0x10, 0x10, &fake_ops, &g, "g"), 0);

	assert_true(io_bus_access(&bus, UINT64_MAX, false, &b, 1));
	assert_int_equal(f.last_off, 0xfff);
	assert_true(io_bus_access(&bus, UINT64_MAX - 7, false, &q, 8));
	assert_int_equal(f.last_off, 0xffc);
	assert_int_equal(q, 0xa5a5a5fca5a5a5f8ull);

	/* Accesses that would run past the top are nobody's, even at 0. */
	f.reads = g.reads = 0;
	v = 0;
	assert_false(io_bus_access(&bus, UINT64_MAX - 1, false, &v, 4));
	assert_int_equal(v, 0xffffffffu);
	assert_false(io_bus_access(&bus, UINT64_MAX - 3, false, &q, 8));
	assert_int_equal(q, UINT64_MAX);
	assert_int_equal(f.reads + g.reads, 0);
	io_bus_destroy(&bus);
}

/* An 8-byte access: two dwords on the same range, low half first. */
static void test_8byte_split(void **state)
{
	struct io_bus bus;
	struct fake f = { 0 };
	uint64_t q = 0x1122334455667788ull;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0xfe000000u, 0x100, &fake_ops, &f, "f"), 0);

	assert_true(io_bus_access(&bus, 0xfe000008u, true, &q, 8));
	assert_int_equal(f.nr_log, 2);
	assert_op(&f, 0, true, 0x08, 4, 0x55667788u);
	assert_op(&f, 1, true, 0x0c, 4, 0x11223344u);

	f.nr_log = 0;
	q = 0;
	assert_true(io_bus_access(&bus, 0xfe0000f8u, false, &q, 8));
	assert_int_equal(f.nr_log, 2);
	assert_op(&f, 0, false, 0xf8, 4, 0);
	assert_op(&f, 1, false, 0xfc, 4, 0);
	assert_int_equal(q, 0xa5a5a5fca5a5a5f8ull);
	/* Two guest accesses of 8 bytes count as two, not four. */
	assert_int_equal(bus.range[0].accesses, 2);
	io_bus_destroy(&bus);
}

/*
 * An access that does not lie wholly inside one range is nobody's, even
 * when a neighbour holds the rest; sizes other than 1/2/4/8 likewise.
 */
static void test_straddle_unclaimed(void **state)
{
	struct io_bus bus;
	struct fake f = { 0 }, g = { 0 };
	uint64_t q;
	uint8_t three[3];
	uint32_t v;

	io_bus_init(&bus);
	assert_int_equal(io_bus_register(&bus, 0xe0000000u, 0x10000, &fake_ops, &f, "f"), 0);
	assert_int_equal(io_bus_register(&bus, 0xe0010000u, 0x10, &fake_ops, &g, "g"), 0);

	q = 0;
	assert_false(io_bus_access(&bus, 0xe000fffcu, false, &q, 8));
	assert_int_equal(q, UINT64_MAX);
	q = 0;
	assert_false(io_bus_access(&bus, 0xe000fffcu, true, &q, 8));
	v = 0;
	assert_false(io_bus_access(&bus, 0xe000fffeu, false, &v, 4));
	assert_int_equal(v, 0xffffffffu);
	assert_false(io_bus_access(&bus, 0xe001000eu, true, &v, 4));
	/* Starting below a range and ending inside it. */
	assert_false(io_bus_access(&bus, 0xdffffffeu, false, &v, 4));
	assert_int_equal(f.nr_log + g.nr_log, 0);

	assert_false(io_bus_access(&bus, 0xe0000000u, false, three, 3));
	assert_int_equal(three[0] & three[1] & three[2], 0xff);
	assert_false(io_bus_access(&bus, 0xe0000000u, true, &v, 0));
	assert_int_equal(f.nr_log, 0);
	assert_int_equal(bus.unclaimed, 7);

	/* The last 8 bytes of the 64 KiB range are its own. */
	assert_true(io_bus_access(&bus, 0xe000fff8u, false, &q, 8));
	assert_int_equal(f.nr_log, 2);
	assert_op(&f, 1, false, 0xfffc, 4, 0);
	io_bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unclaimed_reads_ones),
		cmocka_unit_test(test_overlap_and_unregister),
		cmocka_unit_test(test_reentrant_register),
		cmocka_unit_test(test_64bit_addresses),
		cmocka_unit_test(test_top_of_address_space),
		cmocka_unit_test(test_8byte_split),
		cmocka_unit_test(test_straddle_unclaimed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
