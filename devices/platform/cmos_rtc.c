// SPDX-License-Identifier: MIT
/*
 * MC146818 RTC.  Rather than keep a clock ticking, every time register
 * read samples the host clock: nothing to run while the guest is idle,
 * and the guest always agrees with the host.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "devices/platform/cmos_rtc.h"
#include "lib/util.h"

#define RTC_SECONDS	0x00
#define RTC_MINUTES	0x02
#define RTC_HOURS	0x04
#define RTC_DAY_OF_WEEK	0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH	0x08
#define RTC_YEAR	0x09
#define RTC_REG_A	0x0a
#define RTC_REG_B	0x0b
#define RTC_REG_C	0x0c
#define RTC_REG_D	0x0d
#define CMOS_CENTURY	0x32	/* IBM AT convention; ACPI FADT may name it */
#define CMOS_SIZE	128

#define RTC_A_UIP	0x80
#define RTC_A_DEFAULT	0x26	/* 32.768 kHz time base, 1024 Hz periodic rate */
#define RTC_B_24H	0x02
#define RTC_B_DM_BINARY	0x04
#define RTC_B_DEFAULT	RTC_B_24H
#define RTC_D_VRT	0x80	/* battery fine, time and RAM valid */
#define RTC_HOUR_PM	0x80

struct cmos_rtc {
	pthread_mutex_t lock;	/* index then data come from any vCPU */
	uint8_t index;
	uint8_t ram[CMOS_SIZE];	/* also holds alarms and registers A/B */
};

static uint8_t cmos_rtc_encode(const struct cmos_rtc *rtc, unsigned int v)
{
	if (rtc->ram[RTC_REG_B] & RTC_B_DM_BINARY)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

static uint8_t cmos_rtc_hours(const struct cmos_rtc *rtc, int hour)
{
	int h12;

	if (rtc->ram[RTC_REG_B] & RTC_B_24H)
		return cmos_rtc_encode(rtc, hour);
	/* 12-hour mode: 12, 1 .. 11, PM in bit 7 whatever the data mode. */
	h12 = hour % 12 ? hour % 12 : 12;
	return cmos_rtc_encode(rtc, h12) | (hour >= 12 ? RTC_HOUR_PM : 0);
}

static uint8_t cmos_rtc_time_reg(const struct cmos_rtc *rtc, unsigned int reg)
{
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm))
		return 0;
	switch (reg) {
	case RTC_SECONDS:
		/* tm_sec can be 60 for a leap second; the RTC cannot. */
		return cmos_rtc_encode(rtc, MIN(tm.tm_sec, 59));
	case RTC_MINUTES:
		return cmos_rtc_encode(rtc, tm.tm_min);
	case RTC_HOURS:
		return cmos_rtc_hours(rtc, tm.tm_hour);
	case RTC_DAY_OF_WEEK:
		return cmos_rtc_encode(rtc, tm.tm_wday + 1);	/* Sunday = 1 */
	case RTC_DAY_OF_MONTH:
		return cmos_rtc_encode(rtc, tm.tm_mday);
	case RTC_MONTH:
		return cmos_rtc_encode(rtc, tm.tm_mon + 1);
	case RTC_YEAR:
		return cmos_rtc_encode(rtc, (tm.tm_year + 1900) % 100);
	case CMOS_CENTURY:
		return cmos_rtc_encode(rtc, (tm.tm_year + 1900) / 100);
	}
	return 0;
}

static uint8_t cmos_rtc_read_data(struct cmos_rtc *rtc)
{
	unsigned int reg = rtc->index;

	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case CMOS_CENTURY:
		return cmos_rtc_time_reg(rtc, reg);
	case RTC_REG_A:
		/* Never "update in progress": Linux would spin waiting on it. */
		return rtc->ram[reg] & ~RTC_A_UIP;
	case RTC_REG_C:
		return 0;	/* no interrupt flags: we raise no RTC interrupts */
	case RTC_REG_D:
		return RTC_D_VRT;
	}
	return rtc->ram[reg];
}

static void cmos_rtc_write_data(struct cmos_rtc *rtc, uint8_t val)
{
	unsigned int reg = rtc->index;

	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case CMOS_CENTURY:
		/* The guest cannot set the host's clock; it reads host time. */
		pr_debug("cmos: ignoring write 0x%02x to time register 0x%02x",
			 val, reg);
		return;
	case RTC_REG_A:
		rtc->ram[reg] = val & ~RTC_A_UIP;
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return;		/* read-only */
	}
	rtc->ram[reg] = val;
}

/* Byte-wide ports: a wider access touches 0x70 then 0x71, as on ISA. */
static uint32_t cmos_rtc_io_read(void *opaque, uint16_t off, unsigned int size)
{
	struct cmos_rtc *rtc = opaque;
	uint32_t val = 0;
	unsigned int i;

	pthread_mutex_lock(&rtc->lock);
	for (i = 0; i < size && i < 4; i++) {
		uint8_t b = 0xff;	/* the index port is write-only */

		if (off + i == 1)
			b = cmos_rtc_read_data(rtc);
		val |= (uint32_t)b << (8 * i);
	}
	pthread_mutex_unlock(&rtc->lock);
	return val;
}

static void cmos_rtc_io_write(void *opaque, uint16_t off, unsigned int size,
			      uint32_t val)
{
	struct cmos_rtc *rtc = opaque;
	unsigned int i;

	pthread_mutex_lock(&rtc->lock);
	for (i = 0; i < size && i < 4 && off + i < CMOS_RTC_IO_LEN; i++) {
		uint8_t b = val >> (8 * i);

		/* Bit 7 of the index masks NMIs on a PC; KVM owns NMIs. */
		if (off + i == 0)
			rtc->index = b & 0x7f;
		else
			cmos_rtc_write_data(rtc, b);
	}
	pthread_mutex_unlock(&rtc->lock);
}

const struct io_ops cmos_rtc_io_ops = {
	.read = cmos_rtc_io_read,
	.write = cmos_rtc_io_write,
};

struct cmos_rtc *cmos_rtc_create(void)
{
	struct cmos_rtc *rtc;
	int err;

	rtc = calloc(1, sizeof(*rtc));
	if (!rtc)
		return NULL;
	err = pthread_mutex_init(&rtc->lock, NULL);
	if (err) {
		free(rtc);
		errno = err;
		return NULL;
	}
	rtc->ram[RTC_REG_A] = RTC_A_DEFAULT;
	rtc->ram[RTC_REG_B] = RTC_B_DEFAULT;
	return rtc;
}

void cmos_rtc_destroy(struct cmos_rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}
