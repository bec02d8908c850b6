// SPDX-License-Identifier: MIT
/*
 * Replays every stored fuzz input through the fuzz harness bodies
 * (fuzz/harness.c, fuzz/harness_pci.c), built here with the configured
 * compiler (and sanitizers with --enable-sanitizers):
 *
 *	fuzz/regressions/blk, fuzz/regressions/pci   minimised crashers
 *	fuzz/corpus/blk, fuzz/corpus/pci              the seed corpus
 *
 * A harness aborts on a broken invariant, so a regression fails this test
 * with the harness's message on stderr.  Files named README* are skipped.
 * The source tree comes from $top_srcdir (set by make check), else ".".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/harness.h"

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

/* The largest input either target keeps (-max_len in fuzz/Makefile.inc). */
#define FUZZ_MAX_INPUT	(1 << 20)

static const char *srcdir(void)
{
	const char *d = getenv("top_srcdir");

	return d && *d ? d : ".";
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn over every file in srcdir/sub (sorted); returns how many; -1: no dir. */
static int replay_dir(const char *sub, fuzz_fn fn)
{
	char path[4096], **names = NULL;
	size_t nr = 0, cap = 0, i, len;
	uint8_t *buf;
	struct dirent *de;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", srcdir(), sub);
	dir = opendir(path);
	if (!dir) {
		assert_int_equal(errno, ENOENT);
		return -1;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || !strncmp(de->d_name, "README", 6))
			continue;
		if (nr == cap) {
			cap = cap ? 2 * cap : 16;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[nr] = strdup(de->d_name);
		assert_non_null(names[nr]);
		nr++;
	}
	closedir(dir);
	if (nr)
		qsort(names, nr, sizeof(*names), name_cmp);

	buf = malloc(FUZZ_MAX_INPUT);
	assert_non_null(buf);
	for (i = 0; i < nr; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", srcdir(), sub, names[i]);
		f = fopen(path, "rb");
		assert_non_null(f);
		len = fread(buf, 1, FUZZ_MAX_INPUT, f);
		assert_int_equal(ferror(f), 0);
		fclose(f);
		/* On a crash, this names the input. */
		fprintf(stderr, "replay %s/%s (%zu bytes)\n", sub, names[i], len);
		assert_int_equal(fn(buf, len), 0);
		free(names[i]);
	}
	free(buf);
	free(names);
	return (int)nr;
}

static void test_regressions_blk(void **state)
{
	int n = replay_dir("fuzz/regressions/blk", fuzz_one);

	print_message("fuzz/regressions/blk: %d input(s)\n", n < 0 ? 0 : n);
}

static void test_regressions_pci(void **state)
{
	int n = replay_dir("fuzz/regressions/pci", fuzz_pci_one);

	print_message("fuzz/regressions/pci: %d input(s)\n", n < 0 ? 0 : n);
}

/* The seeds must exist: they are what keeps this test from replaying nothing. */
static void test_corpus_blk(void **state)
{
	assert_true(replay_dir("fuzz/corpus/blk", fuzz_one) > 0);
}

static void test_corpus_pci(void **state)
{
	assert_true(replay_dir("fuzz/corpus/pci", fuzz_pci_one) > 0);
}

/* Empty and truncated inputs are inputs too. */
static void test_short_inputs(void **state)
{
	static const uint8_t zeros[64];
	size_t n;

	for (n = 0; n <= sizeof(zeros); n++) {
		assert_int_equal(fuzz_one(zeros, n), 0);
		assert_int_equal(fuzz_pci_one(zeros, n), 0);
	}
}

static int teardown(void **state)
{
	fuzz_fini();
	fuzz_pci_fini();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regressions_blk),
		cmocka_unit_test(test_regressions_pci),
		cmocka_unit_test(test_corpus_blk),
		cmocka_unit_test(test_corpus_pci),
		cmocka_unit_test(test_short_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
