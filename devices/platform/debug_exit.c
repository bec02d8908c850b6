// SPDX-License-Identifier: MIT
#include <stdlib.h>

#include "devices/platform/debug_exit.h"

struct debug_exit {
	struct vm_stop stop;
};

static uint32_t debug_exit_read(void *opaque, uint16_t off, unsigned int size)
{
	return 0;
}

static void debug_exit_write(void *opaque, uint16_t off, unsigned int size,
			     uint32_t val)
{
	struct debug_exit *dx = opaque;

	vm_stop_request(&dx->stop, val & 0xff, "debug-exit port");
}

const struct io_ops debug_exit_io_ops = {
	.read = debug_exit_read,
	.write = debug_exit_write,
};

struct debug_exit *debug_exit_create(const struct vm_stop *stop)
{
	struct debug_exit *dx = calloc(1, sizeof(*dx));

	if (dx && stop)
		dx->stop = *stop;
	return dx;
}

void debug_exit_destroy(struct debug_exit *dx)
{
	free(dx);
}
