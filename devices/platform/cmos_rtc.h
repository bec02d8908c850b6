/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_CMOS_RTC_H
#define TINYVMM_CMOS_RTC_H

/*
 * MC146818 RTC + CMOS RAM behind the index/data pair 0x70/0x71.  The
 * clock reads the host's UTC time on every access and never shows an
 * update in progress, so Linux reads it without waiting; there is no
 * RTC interrupt (register C reads 0).  Time writes are ignored.  Bytes
 * 0x0e-0x7f are RAM the guest may use, zero at start, except 0x32 which
 * reads the century as on IBM AT compatibles.
 */
#include <stdint.h>

#include "lib/io_bus.h"

#define CMOS_RTC_BASE	0x70
#define CMOS_RTC_IO_LEN	2	/* 0x70 index (bit 7: NMI mask, ignored), 0x71 data */

struct cmos_rtc;

/* Returns NULL with errno set on failure. */
struct cmos_rtc *cmos_rtc_create(void);
void cmos_rtc_destroy(struct cmos_rtc *rtc);

/* opaque = struct cmos_rtc *; register at CMOS_RTC_BASE, CMOS_RTC_IO_LEN. */
extern const struct io_ops cmos_rtc_io_ops;

#endif
