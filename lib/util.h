/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_UTIL_H
#define TINYVMM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a)	(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define IS_POW2(x)	((x) != 0 && (((x) & ((x) - 1)) == 0))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

#define SZ_1K	0x400ULL
#define SZ_1M	0x100000ULL
#define SZ_1G	0x40000000ULL

#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __unused	__attribute__((unused))

/*
 * Every user-visible message goes through these so that it is one line,
 * starts with "tinyvmm: " and ends up on stderr.  Errors are printed where
 * the failing thing is known (the file name, the option) and then returned
 * as a negative errno; only main() decides to exit.
 */
void pr_err(const char *fmt, ...) __printf(1, 2);
void pr_warn(const char *fmt, ...) __printf(1, 2);
void pr_info(const char *fmt, ...) __printf(1, 2);
void pr_debug(const char *fmt, ...) __printf(1, 2);
extern int log_verbose;

/* Exit statuses of the tinyvmm process; documented in tinyvmm(1). */
enum {
	EXIT_GUEST_DONE = 0,	/* guest rebooted, halted or powered off */
	EXIT_SETUP_ERROR = 1,	/* bad option value, unusable kernel, no KVM... */
	EXIT_USAGE = 2,		/* unknown option or device, missing KERNEL */
	EXIT_GUEST_CRASH = 3,	/* emulation failure, internal error */
	EXIT_SIGNAL_BASE = 128,	/* stopped by signal N: 128 + N */
};

/*
 * "256M", "1G", "4096K", "512" (MiB when no suffix, as QEMU and kvmtool).
 * Returns 0 and the size in bytes, or -EINVAL for anything else,
 * including overflow and zero.
 */
int parse_mem_size(const char *s, uint64_t *bytes);

/* Strict unsigned parse: the whole string, base 0 (0x.. ok), no sign. */
int parse_u64(const char *s, uint64_t *out);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mono_ns(void);

/* read()/pread() until len bytes or EOF/error; returns bytes or -errno. */
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);
ssize_t write_full(int fd, const void *buf, size_t len);

/*
 * Copy len bytes out of the iovecs, from byte pos of theirs on, into buf;
 * or from buf into them.  What the iovecs lack past their end is left.
 */
void iov_to_buf(const struct iovec *iov, unsigned int cnt, uint64_t pos, void *buf,
		uint64_t len);
void iov_from_buf(const struct iovec *iov, unsigned int cnt, uint64_t pos, const void *buf,
		  uint64_t len);

#endif
