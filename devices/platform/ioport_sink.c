// SPDX-License-Identifier: MIT
#include "devices/platform/ioport_sink.h"

static uint32_t ioport_sink_read(void *opaque, uint16_t off, unsigned int size)
{
	return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static void ioport_sink_write(void *opaque, uint16_t off, unsigned int size,
			      uint32_t val)
{
}

const struct io_ops ioport_sink_io_ops = {
	.read = ioport_sink_read,
	.write = ioport_sink_write,
};
