// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

int log_verbose;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "tinyvmm: %s", prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	/*
	 * One write per line: the vCPU threads and the main thread log
	 * concurrently, and stdout may be the raw-mode terminal.
	 */
	n = strlen(buf);
	if (n < (int)sizeof(buf) - 2) {
		buf[n++] = '\n';
		buf[n] = 0;
	}
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

#define DEFINE_LOG(name, prefix, cond)			\
void name(const char *fmt, ...)				\
{							\
	va_list ap;					\
	if (!(cond))					\
		return;					\
	va_start(ap, fmt);				\
	vlog(prefix, fmt, ap);				\
	va_end(ap);					\
}

DEFINE_LOG(pr_err, "error: ", 1)
DEFINE_LOG(pr_warn, "warning: ", 1)
DEFINE_LOG(pr_info, "", 1)
DEFINE_LOG(pr_debug, "debug: ", log_verbose)

int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_mem_size(const char *s, uint64_t *bytes)
{
	unsigned long long v, shift = 20;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return -EINVAL;
	switch (*end) {
	case 0:
		break;
	case 'k': case 'K':
		shift = 10; end++;
		break;
	case 'm': case 'M':
		shift = 20; end++;
		break;
	case 'g': case 'G':
		shift = 30; end++;
		break;
	default:
		return -EINVAL;
	}
	/* Accept "256M", "256MB", "256MiB" but nothing else after. */
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)v << shift;
	return 0;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

ssize_t write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += n;
	}
	return done;
}

static void iov_copy(const struct iovec *iov, unsigned int cnt, uint64_t pos, uint8_t *buf,
		     uint64_t len, bool to_iov)
{
	unsigned int i;
	uint64_t n;

	for (i = 0; i < cnt && len; i++) {
		if (pos >= iov[i].iov_len) {
			pos -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - pos, len);
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + pos, buf, n);
		else
			memcpy(buf, (uint8_t *)iov[i].iov_base + pos, n);
		buf += n;
		len -= n;
		pos = 0;
	}
}

void iov_to_buf(const struct iovec *iov, unsigned int cnt, uint64_t pos, void *buf,
		uint64_t len)
{
	iov_copy(iov, cnt, pos, buf, len, false);
}

void iov_from_buf(const struct iovec *iov, unsigned int cnt, uint64_t pos, const void *buf,
		  uint64_t len)
{
	/* Only read from: the one walker serves both directions. */
	iov_copy(iov, cnt, pos, (uint8_t *)buf, len, true);
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
