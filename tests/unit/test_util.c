// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

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

/*
 * iov_to_buf/iov_from_buf from every position over every length, on
 * iovecs of 3, 0 (empty), 1 and 5 bytes: the bytes match a flat model,
 * nothing past the iovecs or past len is touched.  Fails on an off-by-one
 * in skipping to pos, in an empty iovec, or at the end.
 */
static void test_iov_copy(void **state)
{
	uint8_t mem[9], flat[9], buf[12];
	const struct iovec iov[4] = {
		{ mem, 3 }, { mem + 3, 0 }, { mem + 3, 1 }, { mem + 4, 5 },
	};
	unsigned int pos, len, i;

	(void)state;
	for (i = 0; i < sizeof(flat); i++)
		flat[i] = (uint8_t)(0x40 + i);
	for (pos = 0; pos <= 9; pos++) {
		for (len = 0; len <= 9 - pos + 2; len++) {
			memcpy(mem, flat, sizeof(mem));
			memset(buf, 0xee, sizeof(buf));
			iov_to_buf(iov, 4, pos, buf, len);
			for (i = 0; i < sizeof(buf); i++)
				assert_int_equal(buf[i],
						 i < len && pos + i < 9 ? flat[pos + i] : 0xee);
			memset(mem, 0, sizeof(mem));
			iov_from_buf(iov, 4, pos, flat, len);
			for (i = 0; i < sizeof(mem); i++)
				assert_int_equal(mem[i],
						 i >= pos && i < pos + len ? flat[i - pos] : 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_size_suffixes),
		cmocka_unit_test(test_mem_size_rejects),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_align_macros),
		cmocka_unit_test(test_iov_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
