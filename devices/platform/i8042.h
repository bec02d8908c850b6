/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_I8042_H
#define TINYVMM_I8042_H

/*
 * The part of an 8042 keyboard controller Linux needs to reboot: both
 * ports read 0 (no data, input buffer empty, so kb_wait() returns at
 * once) and command 0xFE, "pulse the CPU reset line", stops the VM
 * with status 0.  No keyboard: Linux's i8042 driver, if built in, times
 * out probing (about half a second) and gives up.
 *
 * Register the two ops separately, each one port wide, both with
 * opaque = struct i8042 *: 0x61 between them is not ours.
 */
#include "lib/io_bus.h"
#include "lib/irq.h"

#define I8042_DATA_PORT		0x60
#define I8042_CMD_PORT		0x64	/* status on read, command on write */
#define I8042_CMD_RESET_CPU	0xfe

struct i8042;

/*
 * stop is copied.  Every 0xFE write makes a request (Linux tries ten
 * times), so the VMM should let the first one decide.  NULL + errno on
 * failure.
 */
struct i8042 *i8042_create(const struct vm_stop *stop);
void i8042_destroy(struct i8042 *kbc);

extern const struct io_ops i8042_data_io_ops;	/* at I8042_DATA_PORT */
extern const struct io_ops i8042_cmd_io_ops;	/* at I8042_CMD_PORT */

#endif
