/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DEBUG_EXIT_H
#define TINYVMM_DEBUG_EXIT_H

/*
 * Test-guest exit port: a write of V of any size to any of the
 * DEBUG_EXIT_PORT_LEN ports stops the VM and makes tinyvmm exit with
 * status V & 0xff.  Four ports wide so that an outl at DEBUG_EXIT_PORT
 * lies wholly inside it.  Reads return 0, which tells a guest the port
 * exists (unclaimed ports read all ones).
 */
#include "lib/io_bus.h"
#include "lib/irq.h"

#define DEBUG_EXIT_PORT		0x501
#define DEBUG_EXIT_PORT_LEN	4

struct debug_exit;

/* stop is copied.  NULL + errno on failure. */
struct debug_exit *debug_exit_create(const struct vm_stop *stop);
void debug_exit_destroy(struct debug_exit *dx);

/* opaque = struct debug_exit *. */
extern const struct io_ops debug_exit_io_ops;

#endif
