// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/util.h"

static void test_mem_size_suffixes(void **state)
{
	uint64_t v;

	assert_int_equal(parse_mem_size("256M", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(parse_mem_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_mem_size("4096k", &v), 0);
	assert_int_equal(v, 4096ULL << 10);
	assert_int_equal(parse_mem_size("512", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_mem_size("1GiB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(parse_mem_size("64MB", &v), 0);
	assert_int_equal(v, 64ULL << 20);
}

static void test_mem_size_rejects(void **state)
{
	uint64_t v = 7;

	assert_int_not_equal(parse_mem_size("", &v), 0);
	assert_int_not_equal(parse_mem_size("0", &v), 0);
	assert_int_not_equal(parse_mem_size("-1G", &v), 0);
	assert_int_not_equal(parse_mem_size("1T", &v), 0);
	assert_int_not_equal(parse_mem_size("12Mx", &v), 0);
	assert_int_not_equal(parse_mem_size("abc", &v), 0);
	assert_int_not_equal(parse_mem_size(" 1G", &v), 0);
	assert_int_not_equal(parse_mem_size("99999999999999999999G", &v), 0);
	assert_int_not_equal(parse_mem_size("17179869184G", &v), 0);	/* 2^64 */
	assert_int_equal(v, 7);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	assert_int_equal(parse_u64("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(parse_u64("42", &v), 0);
	assert_int_equal(v, 42);
	assert_int_not_equal(parse_u64("-1", &v), 0);
	assert_int_not_equal(parse_u64("4x", &v), 0);
	assert_int_not_equal(parse_u64("", &v), 0);
	assert_int_not_equal(parse_u64("18446744073709551616", &v), 0);
}

static void test_align_macros(void **state)
{
	assert_int_equal(ALIGN_UP(4097ULL, 4096), 8192);
	assert_int_equal(ALIGN_UP(4096ULL, 4096), 4096);
	assert_int_equal(ALIGN_DOWN(8191ULL, 4096), 4096);
	assert_true(IS_POW2(512));
	assert_false(IS_POW2(1000));
	assert_false(IS_POW2(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_size_suffixes),
		cmocka_unit_test(test_mem_size_rejects),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_align_macros),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
