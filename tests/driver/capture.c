// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "tests/driver/capture.h"

int capture_start(struct capture *c, bool echo)
{
	fflush(stderr);
	c->echo = echo;
	c->buf[0] = 0;
	c->f = tmpfile();
	if (!c->f)
		return -errno;
	c->saved = dup(STDERR_FILENO);
	if (c->saved < 0 || dup2(fileno(c->f), STDERR_FILENO) < 0) {
		int err = -errno;

		if (c->saved >= 0)
			close(c->saved);
		fclose(c->f);
		return err;
	}
	return 0;
}

const char *capture_peek(struct capture *c)
{
	ssize_t n;

	fflush(stderr);
	n = pread(fileno(c->f), c->buf, sizeof(c->buf) - 1, 0);
	c->buf[n > 0 ? n : 0] = 0;
	return c->buf;
}

const char *capture_end(struct capture *c)
{
	int ret;

	capture_peek(c);
	ret = dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	fclose(c->f);
	if (ret < 0)
		return NULL;
	if (c->echo)
		fputs(c->buf, stderr);
	return c->buf;
}

unsigned int str_count(const char *s, const char *needle)
{
	unsigned int n = 0;

	for (s = strstr(s, needle); s; s = strstr(s + 1, needle))
		n++;
	return n;
}
