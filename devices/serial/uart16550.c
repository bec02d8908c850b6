// SPDX-License-Identifier: MIT
/*
 * 16550A UART.  Semantics follow QEMU's hw/char/serial.c where the data
 * sheet leaves room, because that is what Linux's 8250 driver is known
 * to work with: the transmitter is always empty, so "THR empty" is
 * pending whenever it was not just acknowledged by reading IIR.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "devices/serial/uart16550.h"
#include "lib/util.h"

/* Register offsets; DLAB (LCR bit 7) turns 0/1 into the divisor latch. */
#define UART_RX		0	/* RBR on read, THR on write */
#define UART_IER	1
#define UART_IIR	2	/* IIR on read, FCR on write */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define UART_IER_RDI	0x01
#define UART_IER_THRI	0x02
#define UART_IER_RLSI	0x04
#define UART_IER_MSI	0x08
#define UART_IER_MASK	0x0f	/* a 16550A has no IER bits 4-7 */

#define UART_IIR_NO_INT	0x01
#define UART_IIR_MSI	0x00
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_IIR_RLSI	0x06
#define UART_IIR_FIFO	0xc0

#define UART_FCR_ENABLE	0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_TRIGGER 0xc0	/* kept, but data is reported at once */

#define UART_LCR_DLAB	0x80

#define UART_MCR_DTR	0x01
#define UART_MCR_RTS	0x02
#define UART_MCR_OUT1	0x04
#define UART_MCR_OUT2	0x08
#define UART_MCR_LOOP	0x10
#define UART_MCR_MASK	0x1f

#define UART_LSR_DR	0x01
#define UART_LSR_OE	0x02
#define UART_LSR_THRE	0x20
#define UART_LSR_TEMT	0x40

#define UART_MSR_DCTS	0x01
#define UART_MSR_DDSR	0x02
#define UART_MSR_TERI	0x04
#define UART_MSR_DDCD	0x08
#define UART_MSR_CTS	0x10
#define UART_MSR_DSR	0x20
#define UART_MSR_RI	0x40
#define UART_MSR_DCD	0x80

/*
 * How long one byte may wait for out_fd to accept it.  Long enough for
 * a busy reader to catch up, short enough that a reader that went away
 * costs the guest one hiccup, not a hang.
 */
#define UART_TX_TIMEOUT_MS 2000

struct uart {
	pthread_mutex_t lock;		/* everything below but the tx part */
	struct irq_line irq;
	int irq_level;			/* last level driven on irq */

	uint8_t rx_fifo[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
	uint8_t rbr;			/* last byte read: an empty RBR repeats it */
	bool overrun;
	bool thr_ipending;

	uint8_t ier, fcr, lcr, mcr, msr_delta, scr, dll, dlm;

	void (*rx_notify)(void *opaque);
	void *rx_notify_opaque;

	/*
	 * Taken before lock is dropped on a THR write and held across the
	 * write(), so bytes reach out_fd in THR order while a slow reader
	 * never stalls uart_rx_push() on the main thread.
	 */
	pthread_mutex_t tx_lock;
	int out_fd;
	bool tx_stalled;
};

static bool uart_fifo_enabled(const struct uart *u)
{
	return u->fcr & UART_FCR_ENABLE;
}

static size_t uart_rx_space_locked(const struct uart *u)
{
	unsigned int cap = uart_fifo_enabled(u) ? UART_FIFO_SIZE : 1;

	/* Loopback disconnects the serial input from the receiver. */
	if (u->mcr & UART_MCR_LOOP)
		return 0;
	return cap > u->rx_count ? cap - u->rx_count : 0;
}

static void uart_rx_put(struct uart *u, uint8_t byte)
{
	u->rx_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
	u->rx_count++;
}

static uint8_t uart_rx_get(struct uart *u)
{
	if (u->rx_count) {
		u->rbr = u->rx_fifo[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
		u->rx_count--;
	}
	return u->rbr;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

/* Highest-priority enabled source, as IIR bits 0-3 report it. */
static uint8_t uart_iir_id(const struct uart *u)
{
	if ((u->ier & UART_IER_RLSI) && u->overrun)
		return UART_IIR_RLSI;
	if ((u->ier & UART_IER_RDI) && u->rx_count)
		return UART_IIR_RDI;
	if ((u->ier & UART_IER_THRI) && u->thr_ipending)
		return UART_IIR_THRI;
	if ((u->ier & UART_IER_MSI) && u->msr_delta)
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

static void uart_update_irq(struct uart *u)
{
	/* On a PC, OUT2 gates the UART's interrupt output onto the bus. */
	int level = uart_iir_id(u) != UART_IIR_NO_INT &&
		    (u->mcr & UART_MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static uint8_t uart_modem_inputs(const struct uart *u)
{
	uint8_t msr = 0;

	/* Outside loopback, pretend a terminal is plugged in and ready. */
	if (!(u->mcr & UART_MCR_LOOP))
		return UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
	if (u->mcr & UART_MCR_DTR)
		msr |= UART_MSR_DSR;
	if (u->mcr & UART_MCR_RTS)
		msr |= UART_MSR_CTS;
	if (u->mcr & UART_MCR_OUT1)
		msr |= UART_MSR_RI;
	if (u->mcr & UART_MCR_OUT2)
		msr |= UART_MSR_DCD;
	return msr;
}

static void uart_write_mcr(struct uart *u, uint8_t val)
{
	uint8_t old = uart_modem_inputs(u), now, changed;

	u->mcr = val & UART_MCR_MASK;
	now = uart_modem_inputs(u);
	changed = old ^ now;
	if (changed & UART_MSR_CTS)
		u->msr_delta |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		u->msr_delta |= UART_MSR_DDSR;
	if (changed & UART_MSR_DCD)
		u->msr_delta |= UART_MSR_DDCD;
	/* TERI flags only the trailing edge of RI. */
	if ((old & UART_MSR_RI) && !(now & UART_MSR_RI))
		u->msr_delta |= UART_MSR_TERI;
}

static void uart_write_fcr(struct uart *u, uint8_t val)
{
	/* Switching FIFO mode either way empties the FIFOs. */
	if ((val ^ u->fcr) & UART_FCR_ENABLE)
		uart_rx_clear(u);
	/* Without FCR0 set in the same write, the other bits don't latch. */
	if (!(val & UART_FCR_ENABLE)) {
		u->fcr = 0;
		return;
	}
	if (val & UART_FCR_CLEAR_RCVR)
		uart_rx_clear(u);
	/*
	 * Clearing the transmit FIFO has nothing to do: it is always empty.
	 * Bit 5 (64-byte FIFO on a 16750) is not kept, so IIR bit 5 stays 0
	 * and Linux does not take us for a 16750.
	 */
	u->fcr = val & (UART_FCR_ENABLE | UART_FCR_TRIGGER);
}

static void uart_write_ier(struct uart *u, uint8_t val)
{
	uint8_t changed = (u->ier ^ val) & UART_IER_MASK;

	u->ier = val & UART_IER_MASK;
	/*
	 * Enabling THRI with the transmitter empty re-arms the interrupt even
	 * if IIR acknowledged it before: Linux's startup tests (UART_BUG_TXEN,
	 * UART_BUG_THRE) and Windows rely on it, QEMU and Bochs do it.
	 */
	if (changed & UART_IER_THRI)
		u->thr_ipending = u->ier & UART_IER_THRI;
}

/*
 * A THR write.  In loopback the byte goes to our own receiver; a full
 * FIFO loses it and flags an overrun.  Returns whether the byte must
 * still go out to out_fd.
 */
static bool uart_write_thr(struct uart *u, uint8_t byte)
{
	/* Transmission is instant, so THR is empty again straight away. */
	u->thr_ipending = true;
	if (!(u->mcr & UART_MCR_LOOP))
		return true;
	if (u->rx_count < (uart_fifo_enabled(u) ? UART_FIFO_SIZE : 1u))
		uart_rx_put(u, byte);
	else
		u->overrun = true;
	return false;
}

static uint8_t uart_read_reg(struct uart *u, unsigned int reg)
{
	uint8_t val;

	switch (reg) {
	case UART_RX:
		if (u->lcr & UART_LCR_DLAB)
			return u->dll;
		return uart_rx_get(u);
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB)
			return u->dlm;
		return u->ier;
	case UART_IIR:
		/*
		 * Also read at LCR = 0xBF, where a 16650 would show its EFR:
		 * returning IIR (never 0 in FIFO mode) is what tells Linux
		 * there is no EFR.
		 */
		val = uart_iir_id(u);
		if (val == UART_IIR_THRI)
			u->thr_ipending = false;
		if (uart_fifo_enabled(u))
			val |= UART_IIR_FIFO;
		return val;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		val = UART_LSR_THRE | UART_LSR_TEMT;
		if (u->rx_count)
			val |= UART_LSR_DR;
		if (u->overrun)
			val |= UART_LSR_OE;
		u->overrun = false;
		return val;
	case UART_MSR:
		val = uart_modem_inputs(u) | u->msr_delta;
		u->msr_delta = 0;
		return val;
	case UART_SCR:
		return u->scr;
	}
	return 0xff;
}

/* Returns true if the access was a THR write whose byte must go out. */
static bool uart_write_reg(struct uart *u, unsigned int reg, uint8_t val)
{
	switch (reg) {
	case UART_RX:
		if (u->lcr & UART_LCR_DLAB) {
			u->dll = val;
			return false;
		}
		return uart_write_thr(u, val);
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB)
			u->dlm = val;
		else
			uart_write_ier(u, val);
		break;
	case UART_IIR:
		uart_write_fcr(u, val);
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		uart_write_mcr(u, val);
		break;
	case UART_LSR:
	case UART_MSR:
		/* Factory-test writes on real parts; nothing to model. */
		pr_debug("uart: write 0x%02x to read-only register %u", val, reg);
		break;
	case UART_SCR:
		u->scr = val;
		break;
	}
	return false;
}

static void uart_tx_drop(struct uart *u, const char *why)
{
	if (!u->tx_stalled)
		pr_warn("serial output %s; dropping guest output until it recovers",
			why);
	u->tx_stalled = true;
}

/* tx_lock held. */
static void uart_tx_out(struct uart *u, uint8_t byte)
{
	struct pollfd pfd = { .fd = u->out_fd, .events = POLLOUT };
	ssize_t n;
	int r;

	if (u->out_fd < 0)
		return;
	for (;;) {
		/*
		 * Wait for room ourselves rather than block in write(): a
		 * reader that stopped would otherwise hold this vCPU, and the
		 * guest's port lock with it, forever.  Once stalled, only
		 * look, so a dead reader costs one timeout, not one a byte.
		 */
		r = poll(&pfd, 1, u->tx_stalled ? 0 : UART_TX_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			uart_tx_drop(u, "cannot be polled");
			return;
		}
		if (r == 0) {
			uart_tx_drop(u, "is not being read");
			return;
		}
		/* Writing a pipe without reader would raise SIGPIPE. */
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			uart_tx_drop(u, "was closed");
			return;
		}
		n = write(u->out_fd, &byte, 1);
		if (n == 1) {
			if (u->tx_stalled)
				pr_debug("serial output flowing again");
			u->tx_stalled = false;
			return;
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		uart_tx_drop(u, "failed");
		return;
	}
}

/* Called with lock held; drops it, and notifies if input may resume. */
static void uart_unlock(struct uart *u, size_t space_before)
{
	bool notify = !space_before && uart_rx_space_locked(u);
	void (*fn)(void *) = u->rx_notify;
	void *opaque = u->rx_notify_opaque;

	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (notify && fn)
		fn(opaque);
}

/* Wider accesses reach consecutive registers, as on the 8-bit ISA bus. */
static uint32_t uart_io_read(void *opaque, uint16_t off, unsigned int size)
{
	struct uart *u = opaque;
	uint32_t val = 0;
	size_t space;
	unsigned int i;

	pthread_mutex_lock(&u->lock);
	space = uart_rx_space_locked(u);
	for (i = 0; i < size && i < 4; i++) {
		uint8_t b = 0xff;

		if (off + i < UART_IO_LEN)
			b = uart_read_reg(u, off + i);
		val |= (uint32_t)b << (8 * i);
	}
	uart_unlock(u, space);
	return val;
}

static void uart_io_write(void *opaque, uint16_t off, unsigned int size,
			  uint32_t val)
{
	struct uart *u = opaque;
	bool tx = false;
	uint8_t tx_byte = 0;
	size_t space;
	unsigned int i;

	pthread_mutex_lock(&u->lock);
	space = uart_rx_space_locked(u);
	for (i = 0; i < size && i < 4 && off + i < UART_IO_LEN; i++) {
		uint8_t b = val >> (8 * i);

		if (uart_write_reg(u, off + i, b)) {
			tx = true;
			tx_byte = b;
		}
	}
	if (tx)
		pthread_mutex_lock(&u->tx_lock);
	uart_unlock(u, space);
	if (tx) {
		uart_tx_out(u, tx_byte);
		pthread_mutex_unlock(&u->tx_lock);
	}
}

const struct io_ops uart_io_ops = {
	.read = uart_io_read,
	.write = uart_io_write,
};

size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n, i;

	pthread_mutex_lock(&u->lock);
	n = MIN(len, uart_rx_space_locked(u));
	for (i = 0; i < n; i++)
		uart_rx_put(u, buf[i]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t uart_rx_space(struct uart *u)
{
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = uart_rx_space_locked(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

void uart_set_rx_notify(struct uart *u, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&u->lock);
	u->rx_notify = fn;
	u->rx_notify_opaque = opaque;
	pthread_mutex_unlock(&u->lock);
}

struct uart *uart_create(const struct irq_line *irq, int out_fd)
{
	struct uart *u;
	int err;

	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	err = pthread_mutex_init(&u->lock, NULL);
	if (err)
		goto err_free;
	err = pthread_mutex_init(&u->tx_lock, NULL);
	if (err)
		goto err_lock;
	if (irq)
		u->irq = *irq;
	u->out_fd = out_fd;
	/*
	 * 115200 8N1, as firmware leaves a console port: an earlycon
	 * without options divides by the divisor it finds.
	 */
	u->lcr = 0x03;
	u->dll = 0x01;
	return u;

err_lock:
	pthread_mutex_destroy(&u->lock);
err_free:
	free(u);
	errno = err;
	return NULL;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->tx_lock);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
