/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_IOPORT_SINK_H
#define TINYVMM_IOPORT_SINK_H

/*
 * Ports Linux writes only for their side effect on real hardware: the
 * POST-code port 0x80 (io_delay's default) and 0xED (io_delay=0xed).
 * Claiming them keeps those writes quiet and out of the "unclaimed"
 * statistics.  Reads return all ones, like a port with nothing behind
 * it; writes are dropped.  Stateless: opaque may be NULL.
 */
#include "lib/io_bus.h"

#define IOPORT_SINK_POST_PORT	0x80
#define IOPORT_SINK_DELAY_PORT	0xed

extern const struct io_ops ioport_sink_io_ops;

#endif
