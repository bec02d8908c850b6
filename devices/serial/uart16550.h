/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_UART16550_H
#define TINYVMM_UART16550_H

/*
 * A 16550A UART as Linux's 8250 driver expects to find at COM1: eight
 * byte-wide registers, a 16-byte receive FIFO and a transmitter that is
 * always empty because every byte goes straight to out_fd.
 *
 * Threads: the register file is reached from vCPU threads through
 * uart_io_ops, input arrives from the main thread through uart_rx_push().
 * Both are safe to call concurrently.  The IRQ line is only ever driven
 * with a level different from the last one driven, possibly with the
 * UART's lock held, so its set_level must not call back into the UART.
 */
#include <stddef.h>
#include <stdint.h>

#include "lib/io_bus.h"
#include "lib/irq.h"

#define UART_COM1_BASE	0x3f8
#define UART_COM1_IRQ	4
#define UART_IO_LEN	8
#define UART_FIFO_SIZE	16

struct uart;

/*
 * irq is copied, so it may live on the caller's stack; NULL means no
 * interrupt line.  Transmitted bytes are written to out_fd (not closed
 * by uart_destroy); out_fd < 0 discards them.  A byte that cannot be
 * written within a couple of seconds is dropped rather than holding the
 * vCPU: ignore SIGPIPE in the process, a closed reader then only drops
 * output.  Returns NULL with errno set on failure.
 */
struct uart *uart_create(const struct irq_line *irq, int out_fd);
void uart_destroy(struct uart *u);

/* opaque = struct uart *; offsets 0-7, wider accesses are split in bytes. */
extern const struct io_ops uart_io_ops;

/*
 * Host input: queues up to uart_rx_space() bytes from buf into the
 * receive FIFO and returns how many it took; the caller keeps the rest
 * and retries once the guest has read some (see uart_set_rx_notify()).
 * The FIFO holds 16 bytes, or 1 while the guest has FIFOs disabled, as
 * a 16550A does.
 */
size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len);
size_t uart_rx_space(struct uart *u);

/*
 * Optional: fn(opaque) is called when a full receive FIFO gets room
 * again (the guest read RBR or reset the FIFO), so a main loop that
 * stopped reading its input can resume without polling.  It runs on a
 * vCPU thread without the UART's lock held; writing an eventfd is the
 * intended use.  fn = NULL turns it off.
 */
void uart_set_rx_notify(struct uart *u, void (*fn)(void *opaque), void *opaque);

#endif
