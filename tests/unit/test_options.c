// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "lib/util.h"
#include "vmm/options.h"

#define PARSE(o, ...) ({						\
	char *argv[] = { "tinyvmm", __VA_ARGS__, NULL };		\
	options_parse(o, ARRAY_SIZE(argv) - 1, argv);			\
})

static void test_defaults(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "vmlinux"), 0);
	assert_string_equal(o.kernel, "vmlinux");
	assert_int_equal(o.mem_size, 256ULL << 20);
	assert_int_equal(o.nr_cpus, 1);
	assert_true(o.host_quirks);
	assert_false(o.stats);
	assert_null(o.cmdline);
	assert_null(o.initrd);
	assert_int_equal(o.nr_slots, 0);
	options_free(&o);
}

static void test_all_options(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "-m", "1G", "-c", "2", "--cmdline", "console=ttyS0 quiet",
			       "--initrd", "rd.gz", "--stats", "--no-host-quirks",
			       "-s", "9,virtio-blk,test.img,ro,sectorsize=4096",
			       "-s", "10,virtio-blk,b.img", "bzImage"), 0);
	assert_int_equal(o.mem_size, 1ULL << 30);
	assert_int_equal(o.nr_cpus, 2);
	assert_string_equal(o.cmdline, "console=ttyS0 quiet");
	assert_string_equal(o.initrd, "rd.gz");
	assert_true(o.stats);
	assert_false(o.host_quirks);
	assert_int_equal(o.nr_slots, 2);
	assert_int_equal(o.slot[0].slot, 9);
	assert_string_equal(o.slot[0].device, "virtio-blk");
	assert_string_equal(o.slot[0].args, "test.img,ro,sectorsize=4096");
	assert_int_equal(o.slot[1].slot, 10);
	assert_string_equal(o.slot[1].args, "b.img");
	assert_string_equal(o.kernel, "bzImage");
	options_free(&o);
}

static void test_kernel_before_options(void **state)
{
	struct options o;

	/* GNU argument permutation: options may follow KERNEL. */
	assert_int_equal(PARSE(&o, "vmlinux", "-m", "512M"), 0);
	assert_string_equal(o.kernel, "vmlinux");
	assert_int_equal(o.mem_size, 512ULL << 20);
	options_free(&o);
}

static void test_bad_memory(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "-m", "lots", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m", "0", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m", "1M", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m", "3T", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m", "16387K", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
}

static void test_bad_cpus(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "-c", "0", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-c", "65", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-c", "two", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
}

static void test_usage_errors(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "--frobnicate", "vmlinux"), EXIT_USAGE);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-z", "vmlinux"), EXIT_USAGE);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m"), EXIT_USAGE);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-m", "256M"), EXIT_USAGE);	/* no KERNEL */
	options_free(&o);
	assert_int_equal(PARSE(&o, "vmlinux", "extra"), EXIT_USAGE);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "9,virtio-net", "vmlinux"), EXIT_USAGE);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "9", "vmlinux"), EXIT_USAGE);
	options_free(&o);
}

static void test_slot_errors(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "-s", "32,virtio-blk,a", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "x,virtio-blk,a", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "9:1,virtio-blk,a", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "0,virtio-blk,a", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "5,hostbridge", "vmlinux"), EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "9,virtio-blk,a", "-s", "9,virtio-blk,b", "vmlinux"),
			 EXIT_SETUP_ERROR);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-s", "0:0,hostbridge", "-s", "9:0,virtio-blk,a", "vmlinux"), 0);
	assert_int_equal(o.nr_slots, 2);
	assert_null(o.slot[0].args);
	options_free(&o);
}

static void test_help_version(void **state)
{
	struct options o;

	assert_int_equal(PARSE(&o, "--help"), 0);
	assert_true(o.help);
	options_free(&o);
	assert_int_equal(PARSE(&o, "-V"), 0);
	assert_true(o.version);
	options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_kernel_before_options),
		cmocka_unit_test(test_bad_memory),
		cmocka_unit_test(test_bad_cpus),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_slot_errors),
		cmocka_unit_test(test_help_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
