// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lib/io_bus.h"

struct fake {
	uint16_t last_off;
	unsigned int last_size;
	uint32_t last_val;
	int writes;
	struct io_bus *bus;	/* for the re-entrancy test */
};

static uint32_t fake_read(void *opaque, uint16_t off, unsigned int size)
{
	struct fake *f = opaque;

	f->last_off = off;
	f->last_size = size;
	return 0xa5a5a500u | off;
}

static void fake_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct fake *f = opaque;

	f->last_off = off;
	f->last_size = size;
	f->last_val = val;
	f->writes++;
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
	assert_int_equal(io_bus_register(&bus, 0xffff, 2, &fake_ops, &g, "g"), -EINVAL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unclaimed_reads_ones),
		cmocka_unit_test(test_overlap_and_unregister),
		cmocka_unit_test(test_reentrant_register),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
