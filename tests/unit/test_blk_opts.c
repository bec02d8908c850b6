// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio-blk/blk_opts.h"
#include "tests/driver/capture.h"

static struct capture cap;

/* Parse with stderr captured into cap.buf, so messages can be checked. */
static int parse(const char *args, struct blk_opts *o)
{
	int ret;

	assert_int_equal(capture_start(&cap, false), 0);
	ret = blk_opts_parse(args, o);
	assert_non_null(capture_end(&cap));
	return ret;
}

/* Fails with -EINVAL, prints exactly one line containing msg, leaves no path. */
static void expect_error(const char *args, const char *msg)
{
	struct blk_opts o;

	assert_int_equal(parse(args, &o), -EINVAL);
	if (!strstr(cap.buf, msg))
		fail_msg("'%s': got \"%s\", want \"%s\"", args ? args : "(null)", cap.buf, msg);
	assert_non_null(strchr(cap.buf, '\n'));
	assert_ptr_equal(strchr(cap.buf, '\n'), cap.buf + strlen(cap.buf) - 1);
	assert_null(o.path);
}

static void test_defaults(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("/tmp/disk.img", &o), 0);
	assert_string_equal(o.path, "/tmp/disk.img");
	assert_false(o.ro);
	assert_false(o.writeback);
	assert_int_equal(o.logical_block, 512);
	assert_int_equal(o.physical_block, 512);
	assert_false(o.has_range);
	assert_int_equal(o.queue_size, BLK_DEFAULT_QSIZE);
	assert_false(o.has_serial);
	assert_int_equal(o.aio, BLK_AIO_DEFAULT);
	assert_int_equal(o.poll_us, BLK_DEFAULT_POLL_US);
	assert_false(o.has_poll);
	assert_false(o.direct);
	assert_false(o.discard_ignore);
	assert_string_equal(cap.buf, "");
	blk_opts_free(&o);
	assert_null(o.path);
}

static void test_all_options(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,ro,writeback,sectorsize=4096/16384,range=8/100,qsize=128,"
			       "serial=ABC-123 x", &o), 0);
	assert_string_equal(o.path, "img");
	assert_true(o.ro);
	assert_true(o.writeback);
	assert_int_equal(o.logical_block, 4096);
	assert_int_equal(o.physical_block, 16384);
	assert_true(o.has_range);
	assert_int_equal(o.range_lba, 8);
	assert_int_equal(o.range_sectors, 100);
	assert_int_equal(o.queue_size, 128);
	assert_true(o.has_serial);
	assert_string_equal(o.serial, "ABC-123 x");
	blk_opts_free(&o);
}

static void test_sectorsize(void **state)
{
	struct blk_opts o;

	/* Without /P the physical size is the logical one. */
	assert_int_equal(parse("img,sectorsize=4096", &o), 0);
	assert_int_equal(o.logical_block, 4096);
	assert_int_equal(o.physical_block, 4096);
	blk_opts_free(&o);
	assert_int_equal(parse("img,sectorsize=512/65536", &o), 0);
	assert_int_equal(o.physical_block, 65536);
	blk_opts_free(&o);

	expect_error("img,sectorsize=1000", "virtio-blk: sectorsize=1000: not a power of two");
	expect_error("img,sectorsize=256", "sectorsize=256: not a power of two");
	expect_error("img,sectorsize=8192", "sectorsize=8192: not a power of two");
	expect_error("img,sectorsize=512/256", "virtio-blk: sectorsize=512/256: physical");
	expect_error("img,sectorsize=512/1000", "sectorsize=512/1000: physical");
	expect_error("img,sectorsize=512/131072", "sectorsize=512/131072: physical");
	expect_error("img,sectorsize=", "sectorsize=: expected");
	expect_error("img,sectorsize=abc", "sectorsize=abc: expected");
	expect_error("img,sectorsize=512/", "sectorsize=512/: expected");
	expect_error("img,sectorsize=0x200", "sectorsize=0x200: expected");
}

static void test_cache_mode_last_wins(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,writeback,writethru", &o), 0);
	assert_false(o.writeback);
	blk_opts_free(&o);
	assert_int_equal(parse("img,writethru,writeback", &o), 0);
	assert_true(o.writeback);
	blk_opts_free(&o);
	/* Flags may repeat. */
	assert_int_equal(parse("img,ro,ro", &o), 0);
	assert_true(o.ro);
	blk_opts_free(&o);
}

static void test_range(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,range=0/1", &o), 0);
	assert_true(o.has_range);
	assert_int_equal(o.range_lba, 0);
	assert_int_equal(o.range_sectors, 1);
	blk_opts_free(&o);
	/* The last window whose end fits in 63 bits at 4096 bytes a sector. */
	assert_int_equal(parse("img,sectorsize=4096,range=2251799813685246/1", &o), 0);
	blk_opts_free(&o);

	expect_error("img,range=x/y", "virtio-blk: range=x/y: expected");
	expect_error("img,range=0/0", "virtio-blk: range=0/0: SIZE");
	expect_error("img,range=5", "range=5: expected");
	expect_error("img,range=/5", "range=/5: expected");
	expect_error("img,range=0x10/5", "range=0x10/5: expected");
	expect_error("img,range=-1/5", "range=-1/5: expected");
	expect_error("img,range=1/18446744073709551616", "expected");
	expect_error("img,range=18446744073709551615/1", "range=18446744073709551615/1: window");
	/* The byte bound depends on sectorsize, in either order. */
	expect_error("img,sectorsize=4096,range=2251799813685247/1", "range=2251799813685247/1");
	expect_error("img,range=2251799813685247/1,sectorsize=4096", "range=2251799813685247/1");
}

static void test_qsize(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,qsize=2", &o), 0);
	assert_int_equal(o.queue_size, 2);
	blk_opts_free(&o);
	assert_int_equal(parse("img,qsize=1024", &o), 0);
	assert_int_equal(o.queue_size, 1024);
	blk_opts_free(&o);

	expect_error("img,qsize=100", "virtio-blk: qsize=100: not a power of two");
	expect_error("img,qsize=2048", "virtio-blk: qsize=2048: not a power of two");
	expect_error("img,qsize=1", "qsize=1:");
	expect_error("img,qsize=0", "qsize=0:");
	expect_error("img,qsize=", "qsize=:");
	expect_error("img,qsize=65536", "qsize=65536:");
}

static void test_serial(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,serial=ABCDEFGHIJKLMNOPQRST", &o), 0);
	assert_int_equal(strlen(o.serial), BLK_ID_BYTES);
	assert_string_equal(o.serial, "ABCDEFGHIJKLMNOPQRST");
	blk_opts_free(&o);

	expect_error("img,serial=ABCDEFGHIJKLMNOPQRSTU", "virtio-blk: serial=ABCDEFGHIJKLMNOPQRSTU:");
	expect_error("img,serial=", "serial=:");
	expect_error("img,serial=a\tb", "not printable");
	expect_error("img,serial=caf\xc3\xa9", "not printable");
	expect_error("img,serial=a\x7f", "not printable");
}

static void test_unknown_and_malformed(void **state)
{
	expect_error("img,foo", "virtio-blk: unknown option 'foo'");
	expect_error("img,ro,bogus=1", "virtio-blk: unknown option 'bogus=1'");
	expect_error("img,writeback=1", "unknown option 'writeback=1'");
	expect_error("img,RO", "unknown option 'RO'");
	expect_error("img,,ro", "empty option");
	expect_error("img,ro,", "empty option");
}

static void test_missing_path(void **state)
{
	expect_error("", "virtio-blk: missing image path");
	expect_error(NULL, "virtio-blk: missing image path");
	expect_error(",ro", "virtio-blk: missing image path");
}

static void test_aio(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,aio=threads", &o), 0);
	assert_int_equal(o.aio, BLK_AIO_THREADS);
	assert_string_equal(cap.buf, "");
	blk_opts_free(&o);
	assert_int_equal(parse("img,ro,aio=io_uring,qsize=128", &o), 0);
	assert_int_equal(o.aio, BLK_AIO_IO_URING);
	assert_true(o.ro);
	assert_int_equal(o.queue_size, 128);
	blk_opts_free(&o);

	expect_error("img,aio=bogus", "virtio-blk: aio=bogus: expected aio=threads or aio=io_uring");
	expect_error("img,aio=", "virtio-blk: aio=: expected");
	expect_error("img,aio=IO_URING", "aio=IO_URING:");
	expect_error("img,aio=threads,aio=io_uring", "aio=io_uring: aio= given twice");
	expect_error("img,aio", "unknown option 'aio'");
}

static void test_poll(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,poll=0", &o), 0);
	assert_int_equal(o.poll_us, 0);
	assert_true(o.has_poll);
	blk_opts_free(&o);
	assert_int_equal(parse("img,poll=1000,aio=io_uring", &o), 0);
	assert_int_equal(o.poll_us, 1000);
	blk_opts_free(&o);
	/* Polling is the device's, whatever the engine: any poll= with either. */
	assert_int_equal(parse("img,aio=threads,poll=0", &o), 0);
	assert_int_equal(o.poll_us, 0);
	blk_opts_free(&o);
	assert_int_equal(parse("img,poll=50,aio=threads", &o), 0);
	assert_int_equal(o.aio, BLK_AIO_THREADS);
	assert_int_equal(o.poll_us, 50);
	assert_true(o.has_poll);
	blk_opts_free(&o);
	assert_int_equal(parse("img,aio=threads,poll=1", &o), 0);
	assert_int_equal(o.poll_us, 1);
	blk_opts_free(&o);
	/* And the default window applies to aio=threads too. */
	assert_int_equal(parse("img,aio=threads", &o), 0);
	assert_int_equal(o.poll_us, BLK_DEFAULT_POLL_US);
	assert_false(o.has_poll);
	blk_opts_free(&o);

	expect_error("img,poll=1001", "virtio-blk: poll=1001: expected microseconds from 0 to 1000");
	expect_error("img,poll=-1", "poll=-1: expected microseconds");
	expect_error("img,poll=", "poll=: expected microseconds");
	expect_error("img,poll=5us", "poll=5us: expected microseconds");
	expect_error("img,poll=5,poll=6", "poll=6: poll= given twice");
	expect_error("img,aio=threads,poll=1001", "poll=1001: expected microseconds from 0 to 1000");
}

static void test_direct_discard(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img,direct,discard=ignore", &o), 0);
	assert_true(o.direct);
	assert_true(o.discard_ignore);
	blk_opts_free(&o);
	assert_int_equal(parse("img,discard=unmap,direct,direct", &o), 0);
	assert_true(o.direct);
	assert_false(o.discard_ignore);
	blk_opts_free(&o);

	expect_error("img,discard=on", "virtio-blk: discard=on: expected discard=unmap or discard=ignore");
	expect_error("img,discard=", "discard=: expected");
	expect_error("img,discard=unmap,discard=ignore", "discard=ignore: discard= given twice");
	expect_error("img,direct=1", "unknown option 'direct=1'");
	expect_error("img,discard", "unknown option 'discard'");
}

static void test_msix(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("img", &o), 0);
	assert_false(o.no_msix);
	blk_opts_free(&o);
	assert_int_equal(parse("img,msix=off", &o), 0);
	assert_true(o.no_msix);
	blk_opts_free(&o);
	assert_int_equal(parse("img,msix=on", &o), 0);
	assert_false(o.no_msix);
	blk_opts_free(&o);

	expect_error("img,msix=no", "virtio-blk: msix=no: expected msix=on or msix=off");
	expect_error("img,msix", "unknown option 'msix'");
	expect_error("img,msix=on,msix=off", "msix=off: msix= given twice");
}

static void test_mq(void **state)
{
	/* mq 0: the device's default, one per vCPU */
	static const struct { const char *args; uint32_t mq; } ok[] = {
		{ "img", 0 }, { "img,mq=1", 1 }, { "img,mq=16", BLK_MAX_QUEUES },
	};
	struct blk_opts o;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(ok[i].args, &o), 0);
		assert_int_equal(o.mq, ok[i].mq);
		blk_opts_free(&o);
	}

	expect_error("img,mq=0", "virtio-blk: mq=0: expected queues from 1 to 16");
	expect_error("img,mq=17", "mq=17: expected queues from 1 to 16");
	expect_error("img,mq=two", "mq=two: expected queues from 1 to 16");
	expect_error("img,mq", "unknown option 'mq'");
	expect_error("img,mq=2,mq=4", "mq=4: mq= given twice");
}

static void test_duplicates(void **state)
{
	expect_error("img,qsize=64,qsize=128", "qsize=128: qsize= given twice");
	expect_error("img,sectorsize=512,sectorsize=4096", "given twice");
	expect_error("img,range=0/1,range=0/2", "given twice");
	expect_error("img,serial=a,serial=b", "given twice");
}

/*
 * An NBD URI: the options that make sense there parse as for a file;
 * direct and aio= (the file engines') are one-line errors naming them,
 * reconnect-delay= is for NBD only, in 10..30000 ms, and timeout= for NBD
 * only, in 1..3600 s.
 */
static void test_nbd(void **state)
{
	struct blk_opts o;

	assert_int_equal(parse("nbd+unix:///exp?socket=/run/s,ro,writeback,sectorsize=4096,"
			       "range=8/16,serial=n1,poll=0,discard=ignore,reconnect-delay=250,"
			       "timeout=5",
			       &o), 0);
	assert_string_equal(o.path, "nbd+unix:///exp?socket=/run/s");
	assert_true(o.ro && o.writeback && o.discard_ignore);
	assert_int_equal(o.logical_block, 4096);
	assert_int_equal(o.reconnect_ms, 250);
	assert_int_equal(o.timeout_s, 5);
	blk_opts_free(&o);
	assert_int_equal(parse("nbd://127.0.0.1:10809/e", &o), 0);
	assert_int_equal(o.reconnect_ms, 0);
	assert_int_equal(o.timeout_s, 0);
	blk_opts_free(&o);
	expect_error("nbd://h/e,direct", "direct: not for an NBD export");
	expect_error("nbd://h/e,aio=threads", "aio=threads: not for an NBD export");
	expect_error("nbd+unix:///e?socket=/s,aio=io_uring", "aio=io_uring: not for an NBD export");
	expect_error("disk.img,reconnect-delay=100", "reconnect-delay=100: only for an NBD export");
	expect_error("nbd://h/e,reconnect-delay=5", "reconnect-delay=5: expected milliseconds");
	expect_error("nbd://h/e,reconnect-delay=30001", "expected milliseconds from 10 to 30000");
	expect_error("nbd://h/e,reconnect-delay=10,reconnect-delay=20", "given twice");
	expect_error("disk.img,timeout=5", "timeout=5: only for an NBD export");
	expect_error("nbd://h/e,timeout=0", "timeout=0: expected seconds from 1 to 3600");
	expect_error("nbd://h/e,timeout=3601", "timeout=3601: expected seconds");
	expect_error("nbd://h/e,timeout=x", "timeout=x: expected seconds");
	expect_error("nbd://h/e,timeout=1,timeout=2", "given twice");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_sectorsize),
		cmocka_unit_test(test_cache_mode_last_wins),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_qsize),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_unknown_and_malformed),
		cmocka_unit_test(test_missing_path),
		cmocka_unit_test(test_direct_discard),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_mq),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_aio),
		cmocka_unit_test(test_poll),
		cmocka_unit_test(test_nbd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
