// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lib/guest_mem.h"

static void test_layout_small(void **state)
{
	struct guest_mem gm;

	assert_int_equal(gmem_init(&gm, 64ULL << 20), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm.region[0].gpa, 0);
	assert_int_equal(gm.region[0].size, 64ULL << 20);
	assert_int_equal(gmem_low_end(&gm), 64ULL << 20);
	gmem_free(&gm);
}

static void test_layout_skips_pci_hole(void **state)
{
	struct guest_mem gm;

	/* MAP_NORESERVE: 5 GiB of address space, nothing touched. */
	assert_int_equal(gmem_init(&gm, 5ULL << 30), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.region[0].size, GMEM_32BIT_GAP_START);
	assert_int_equal(gm.region[1].gpa, GMEM_4G);
	assert_int_equal(gm.region[1].size, (5ULL << 30) - GMEM_32BIT_GAP_START);
	assert_null(gmem_ptr(&gm, GMEM_32BIT_GAP_START, 1));
	assert_null(gmem_ptr(&gm, 0xfee00000, 4));
	assert_non_null(gmem_ptr(&gm, GMEM_4G, 4096));
	/* A range that starts in low RAM and runs into the hole. */
	assert_null(gmem_ptr(&gm, GMEM_32BIT_GAP_START - 8, 16));
	gmem_free(&gm);
}

static void test_bounds(void **state)
{
	struct guest_mem gm;
	uint64_t size = 16ULL << 20;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];

	assert_int_equal(gmem_init(&gm, size), 0);
	assert_non_null(gmem_ptr(&gm, size - 8, 8));
	assert_null(gmem_ptr(&gm, size - 7, 8));
	assert_null(gmem_ptr(&gm, size, 1));
	assert_non_null(gmem_ptr(&gm, 0, size));
	assert_null(gmem_ptr(&gm, 0, size + 1));
	/* Sums that wrap around 2^64 must not look small. */
	assert_null(gmem_ptr(&gm, UINT64_MAX, 2));
	assert_null(gmem_ptr(&gm, 4096, UINT64_MAX));
	assert_null(gmem_ptr(&gm, UINT64_MAX - 4095, 4096));

	assert_int_equal(gmem_write(&gm, 0x1000, buf, sizeof(buf)), 0);
	assert_int_equal(gmem_read(&gm, 0x1000, out, sizeof(out)), 0);
	assert_memory_equal(buf, out, sizeof(buf));
	assert_int_equal(gmem_write(&gm, size - 4, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(gmem_read(&gm, size - 4, out, sizeof(out)), -EFAULT);
	gmem_free(&gm);
}

static void test_zero(void **state)
{
	struct guest_mem gm;
	uint8_t *p;
	uint64_t i;

	assert_int_equal(gmem_init(&gm, 16ULL << 20), 0);
	p = gmem_ptr(&gm, 0, 16ULL << 20);
	memset(p, 0xa5, 3 * 4096 * 4);
	/* Unaligned both ends, several whole pages in between. */
	assert_int_equal(gmem_zero(&gm, 100, 5 * 4096), 0);
	assert_int_equal(p[99], 0xa5);
	for (i = 100; i < 100 + 5 * 4096; i++)
		if (p[i] != 0)
			fail_msg("byte %llu not zero", (unsigned long long)i);
	assert_int_equal(p[100 + 5 * 4096], 0xa5);
	/* Less than a page, inside one page. */
	assert_int_equal(gmem_zero(&gm, 9 * 4096 + 10, 20), 0);
	assert_int_equal(p[9 * 4096 + 9], 0xa5);
	assert_int_equal(p[9 * 4096 + 10], 0);
	assert_int_equal(p[9 * 4096 + 29], 0);
	assert_int_equal(p[9 * 4096 + 30], 0xa5);
	assert_int_equal(gmem_zero(&gm, (16ULL << 20) - 8, 16), -EFAULT);
	gmem_free(&gm);
}

static void test_rejects_bad_size(void **state)
{
	struct guest_mem gm;

	assert_int_not_equal(gmem_init(&gm, 0), 0);
	assert_int_not_equal(gmem_init(&gm, 4095), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_small),
		cmocka_unit_test(test_layout_skips_pci_hole),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_zero),
		cmocka_unit_test(test_rejects_bad_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
