// SPDX-License-Identifier: MIT
#include <stdlib.h>

#include "devices/platform/i8042.h"
#include "lib/util.h"

struct i8042 {
	struct vm_stop stop;
};

/* Nothing to read and room to write: status and data both read 0. */
static uint32_t i8042_io_read(void *opaque, uint16_t off, unsigned int size)
{
	return 0;
}

static void i8042_data_write(void *opaque, uint16_t off, unsigned int size,
			     uint32_t val)
{
	pr_debug("i8042: ignoring data byte 0x%02x", val & 0xff);
}

static void i8042_cmd_write(void *opaque, uint16_t off, unsigned int size,
			    uint32_t val)
{
	struct i8042 *kbc = opaque;
	uint8_t cmd = val;	/* a wider write's low byte is what hits 0x64 */

	if (off == 0 && cmd == I8042_CMD_RESET_CPU) {
		vm_stop_request(&kbc->stop, 0, "guest reset (i8042 0xFE)");
		return;
	}
	pr_debug("i8042: ignoring command 0x%02x", cmd);
}

const struct io_ops i8042_data_io_ops = {
	.read = i8042_io_read,
	.write = i8042_data_write,
};

const struct io_ops i8042_cmd_io_ops = {
	.read = i8042_io_read,
	.write = i8042_cmd_write,
};

struct i8042 *i8042_create(const struct vm_stop *stop)
{
	struct i8042 *kbc = calloc(1, sizeof(*kbc));

	if (kbc && stop)
		kbc->stop = *stop;
	return kbc;
}

void i8042_destroy(struct i8042 *kbc)
{
	free(kbc);
}
