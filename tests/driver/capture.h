/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_CAPTURE_H
#define TINYVMM_TESTS_CAPTURE_H

/*
 * What the code under test prints on stderr, caught so a test can hold
 * it to the one-line-error rule.  Not for tests that print themselves
 * while capturing: their lines land in the buffer too.
 */
#include <stdbool.h>
#include <stdio.h>

struct capture {
	FILE *f;
	int saved;		/* the real stderr */
	bool echo;		/* capture_end() prints what it caught, too */
	char buf[8192];		/* what was printed, NUL-terminated, cut to fit */
};

/*
 * stderr into a temporary file until capture_end(), which prints what
 * it caught too when echo (so that a failing test's log shows it).
 * 0 or -errno.
 */
int capture_start(struct capture *c, bool echo);
/* While capturing: what has been printed so far, in c->buf. */
const char *capture_peek(struct capture *c);
/* stderr back; c->buf, or NULL when stderr could not be put back. */
const char *capture_end(struct capture *c);
/* How many times needle stands in s ("\n": its lines). */
unsigned int str_count(const char *s, const char *needle);

#endif
