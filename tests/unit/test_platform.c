// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/platform/debug_exit.h"
#include "devices/platform/i8042.h"
#include "devices/platform/ioport_sink.h"

struct stop_rec {
	int calls;
	int status;
	char why[64];
};

static void rec_stop(void *opaque, int status, const char *why)
{
	struct stop_rec *r = opaque;

	r->calls++;
	r->status = status;
	assert_non_null(why);
	strncpy(r->why, why, sizeof(r->why) - 1);
}

static void test_i8042_reset(void **state)
{
	struct stop_rec rec = { .status = -1 };
	struct vm_stop stop = { .request = rec_stop, .opaque = &rec };
	struct i8042 *kbc = i8042_create(&stop);

	assert_non_null(kbc);
	/* kb_wait(): input buffer empty (bit 1), nothing to read (bit 0) */
	assert_int_equal(i8042_cmd_io_ops.read(kbc, 0, 1) & 0x03, 0);
	assert_int_equal(i8042_data_io_ops.read(kbc, 0, 1), 0);

	i8042_cmd_io_ops.write(kbc, 0, 1, I8042_CMD_RESET_CPU);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.status, 0);
	assert_non_null(strstr(rec.why, "reset"));
	i8042_destroy(kbc);
}

static void test_i8042_other_commands(void **state)
{
	struct stop_rec rec = { 0 };
	struct vm_stop stop = { .request = rec_stop, .opaque = &rec };
	struct i8042 *kbc = i8042_create(&stop);
	static const uint8_t cmds[] = { 0x20, 0x60, 0xaa, 0xad, 0xd1, 0xfd, 0xff };
	unsigned int i;

	assert_non_null(kbc);
	for (i = 0; i < sizeof(cmds); i++)
		i8042_cmd_io_ops.write(kbc, 0, 1, cmds[i]);
	/* 0xFE to the data port is a keyboard byte, not a reset */
	i8042_data_io_ops.write(kbc, 0, 1, 0xfe);
	assert_int_equal(rec.calls, 0);
	assert_int_equal(i8042_cmd_io_ops.read(kbc, 0, 1) & 0x02, 0);
	i8042_destroy(kbc);
}

static void test_i8042_without_stop(void **state)
{
	struct i8042 *kbc = i8042_create(NULL);

	assert_non_null(kbc);
	i8042_cmd_io_ops.write(kbc, 0, 1, I8042_CMD_RESET_CPU);	/* no crash */
	i8042_destroy(kbc);
	i8042_destroy(NULL);
}

static void test_debug_exit(void **state)
{
	static const uint32_t vals[] = { 0, 1, 42, 0x1ff };
	static const unsigned int sizes[] = { 1, 2, 4 };
	struct stop_rec rec = { 0 };
	struct vm_stop stop = { .request = rec_stop, .opaque = &rec };
	struct debug_exit *dx = debug_exit_create(&stop);
	unsigned int s, v;
	int calls = 0;

	assert_non_null(dx);
	assert_int_equal(DEBUG_EXIT_PORT, 0x501);
	for (s = 0; s < 3; s++) {
		for (v = 0; v < 4; v++) {
			uint32_t val = vals[v];

			/* a byte write carries only the low byte */
			if (sizes[s] == 1)
				val &= 0xff;
			rec.status = -1;
			debug_exit_io_ops.write(dx, 0, sizes[s], val);
			assert_int_equal(rec.calls, ++calls);
			assert_int_equal(rec.status, vals[v] & 0xff);
			assert_string_equal(rec.why, "debug-exit port");
		}
	}
	/* the top bits of a dword do not leak into the status */
	debug_exit_io_ops.write(dx, 0, 4, 0xabcdef07);
	assert_int_equal(rec.status, 7);
	assert_int_equal(debug_exit_io_ops.read(dx, 0, 1), 0);
	assert_int_equal(rec.calls, calls + 1);
	debug_exit_destroy(dx);
}

static void test_ioport_sink(void **state)
{
	assert_int_equal(ioport_sink_io_ops.read(NULL, 0, 1), 0xff);
	assert_int_equal(ioport_sink_io_ops.read(NULL, 0, 2), 0xffff);
	assert_int_equal(ioport_sink_io_ops.read(NULL, 0, 4), 0xffffffffu);
	ioport_sink_io_ops.write(NULL, 0, 1, 0x55);
	ioport_sink_io_ops.write(NULL, 0, 4, 0x12345678);
	assert_int_equal(ioport_sink_io_ops.read(NULL, 0, 1), 0xff);
	assert_int_equal(IOPORT_SINK_POST_PORT, 0x80);
	assert_int_equal(IOPORT_SINK_DELAY_PORT, 0xed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i8042_reset),
		cmocka_unit_test(test_i8042_other_commands),
		cmocka_unit_test(test_i8042_without_stop),
		cmocka_unit_test(test_debug_exit),
		cmocka_unit_test(test_ioport_sink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
