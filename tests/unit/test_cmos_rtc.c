// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "devices/platform/cmos_rtc.h"

#define REG_A	0x0a
#define REG_B	0x0b
#define REG_C	0x0c
#define REG_D	0x0d

static int setup(void **state)
{
	*state = cmos_rtc_create();
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	cmos_rtc_destroy(*state);
	return 0;
}

static uint8_t cmos_read(struct cmos_rtc *rtc, uint8_t index)
{
	uint32_t v;

	cmos_rtc_io_ops.write(rtc, 0, 1, index);
	v = cmos_rtc_io_ops.read(rtc, 1, 1);
	assert_true(v <= 0xff);
	return v;
}

static void cmos_write(struct cmos_rtc *rtc, uint8_t index, uint8_t val)
{
	cmos_rtc_io_ops.write(rtc, 0, 1, index);
	cmos_rtc_io_ops.write(rtc, 1, 1, val);
}

static unsigned int from_bcd(uint8_t v)
{
	/* every nibble a decimal digit, or it is not BCD */
	assert_true((v & 0x0f) <= 9);
	assert_true((v >> 4) <= 9);
	return (v >> 4) * 10 + (v & 0x0f);
}

/*
 * Read the clock as Linux's mc146818_get_time() does: seconds first and
 * again last, retrying if a second boundary fell in between, so the
 * fields belong together even across a minute or day roll-over.
 */
static time_t read_rtc(struct cmos_rtc *rtc, bool bcd, bool h24)
{
	unsigned int (*dec)(uint8_t) = bcd ? from_bcd : NULL;
	uint8_t raw[10], hour;
	struct tm tm = { 0 };
	int tries;

	for (tries = 0; tries < 10; tries++) {
		unsigned int i;

		for (i = 0; i < 10; i++)
			raw[i] = cmos_read(rtc, i);
		if (cmos_read(rtc, 0) == raw[0])
			break;
	}
	assert_true(tries < 10);

#define DEC(x) (dec ? dec(x) : (x))
	tm.tm_sec = DEC(raw[0]);
	tm.tm_min = DEC(raw[2]);
	hour = raw[4];
	if (h24) {
		tm.tm_hour = DEC(hour);
	} else {
		unsigned int h = DEC(hour & 0x7f);

		assert_true(h >= 1 && h <= 12);
		tm.tm_hour = (h % 12) + ((hour & 0x80) ? 12 : 0);
	}
	tm.tm_mday = DEC(raw[7]);
	tm.tm_mon = DEC(raw[8]) - 1;
	tm.tm_year = DEC(raw[9]) + 100;	/* 20xx */
	assert_true(tm.tm_sec <= 59 && tm.tm_min <= 59 && tm.tm_hour <= 23);
	assert_true(tm.tm_mday >= 1 && tm.tm_mday <= 31);
	assert_true(tm.tm_mon >= 0 && tm.tm_mon <= 11);
	assert_true(DEC(raw[6]) >= 1 && DEC(raw[6]) <= 7);
#undef DEC
	return timegm(&tm);
}

static void check_against_host(struct cmos_rtc *rtc, bool bcd, bool h24)
{
	time_t before = time(NULL), t, after;

	t = read_rtc(rtc, bcd, h24);
	after = time(NULL);
	assert_true(t >= before - 2);
	assert_true(t <= after + 2);
}

/* Sample one register and the host's calendar within the same second. */
static uint8_t read_with_tm(struct cmos_rtc *rtc, uint8_t reg, struct tm *tm)
{
	time_t now;
	uint8_t v;

	do {
		now = time(NULL);
		gmtime_r(&now, tm);
		v = cmos_read(rtc, reg);
	} while (time(NULL) != now);
	return v;
}

static void test_bcd_time_matches_host(void **state)
{
	struct cmos_rtc *rtc = *state;
	struct tm tm;
	uint8_t v;

	check_against_host(rtc, true, true);
	v = read_with_tm(rtc, 6, &tm);
	assert_int_equal(from_bcd(v), tm.tm_wday + 1);	/* Sunday = 1 */
	v = read_with_tm(rtc, 9, &tm);
	assert_int_equal(from_bcd(v), (tm.tm_year + 1900) % 100);
	v = read_with_tm(rtc, 0x32, &tm);
	assert_int_equal(from_bcd(v), (tm.tm_year + 1900) / 100);
}

static void test_binary_mode(void **state)
{
	struct cmos_rtc *rtc = *state;
	struct tm tm;
	uint8_t v;

	cmos_write(rtc, REG_B, 0x02 | 0x04);
	assert_int_equal(cmos_read(rtc, REG_B), 0x06);
	check_against_host(rtc, false, true);
	v = read_with_tm(rtc, 9, &tm);
	assert_int_equal(v, (tm.tm_year + 1900) % 100);
	v = read_with_tm(rtc, 0x32, &tm);
	assert_int_equal(v, (tm.tm_year + 1900) / 100);
	v = read_with_tm(rtc, 2, &tm);
	assert_int_equal(v, tm.tm_min);
}

static void test_12h_mode(void **state)
{
	struct cmos_rtc *rtc = *state;

	cmos_write(rtc, REG_B, 0x00);
	check_against_host(rtc, true, false);
	cmos_write(rtc, REG_B, 0x04);
	check_against_host(rtc, false, false);
}

static void test_status_registers(void **state)
{
	struct cmos_rtc *rtc = *state;
	int i;

	assert_int_equal(cmos_read(rtc, REG_A), 0x26);
	assert_int_equal(cmos_read(rtc, REG_B), 0x02);
	assert_int_equal(cmos_read(rtc, REG_C), 0);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
	/* Linux polls UIP before every read: it must never show */
	for (i = 0; i < 20000; i++)
		assert_false(cmos_read(rtc, REG_A) & 0x80);
	/* A keeps what the guest writes except UIP */
	cmos_write(rtc, REG_A, 0xa6);
	assert_int_equal(cmos_read(rtc, REG_A), 0x26);
	cmos_write(rtc, REG_A, 0x2f);
	assert_int_equal(cmos_read(rtc, REG_A), 0x2f);
	/* C and D are read-only */
	cmos_write(rtc, REG_C, 0xff);
	cmos_write(rtc, REG_D, 0x00);
	assert_int_equal(cmos_read(rtc, REG_C), 0);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
}

static void test_time_writes_ignored(void **state)
{
	struct cmos_rtc *rtc = *state;
	unsigned int reg;

	cmos_write(rtc, REG_B, 0x82);	/* SET, as mc146818_set_time does */
	for (reg = 0; reg <= 9; reg += reg < 6 ? 2 : 1)
		cmos_write(rtc, reg, 0x99);
	cmos_write(rtc, REG_B, 0x02);
	check_against_host(rtc, true, true);
}

static void test_ram(void **state)
{
	struct cmos_rtc *rtc = *state;
	unsigned int i;

	/* nothing configured: no floppy, no disks, nothing */
	for (i = 0x10; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(rtc, i), 0);
	for (i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(rtc, i, i ^ 0xa5);
	for (i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(rtc, i), i ^ 0xa5);
	/* alarm bytes are plain storage too */
	cmos_write(rtc, 1, 0x42);
	assert_int_equal(cmos_read(rtc, 1), 0x42);
}

static void test_index_nmi_bit_ignored(void **state)
{
	struct cmos_rtc *rtc = *state;

	cmos_write(rtc, 0x80 | 0x20, 0x5a);
	assert_int_equal(cmos_read(rtc, 0x20), 0x5a);
	cmos_write(rtc, 0x21, 0x3c);
	assert_int_equal(cmos_read(rtc, 0x80 | 0x21), 0x3c);
	assert_int_equal(cmos_read(rtc, 0x80 | REG_D), 0x80);
	/* the index port is write-only */
	assert_int_equal(cmos_rtc_io_ops.read(rtc, 0, 1), 0xff);
	/* outw 0x70: index and data in one go */
	cmos_rtc_io_ops.write(rtc, 0, 2, 0x7722);
	assert_int_equal(cmos_read(rtc, 0x22), 0x77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bcd_time_matches_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12h_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_writes_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_nmi_bit_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
