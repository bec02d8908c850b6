// SPDX-License-Identifier: MIT
/*
 * The UART is driven here the way Linux's 8250 driver drives it
 * (drivers/tty/serial/8250/8250_port.c, 6.1), so a failure names the
 * probe step that would misdetect or hang a real guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/serial/uart16550.h"

#define RX	0
#define IER	1
#define IIR	2
#define FCR	2
#define EFR	2
#define LCR	3
#define MCR	4
#define LSR	5
#define MSR	6
#define SCR	7

#define IIR_NO_INT	0x01
#define IIR_ID		0x0f
#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10

struct irq_rec {
	int level;
	int calls;
	int raises;
	unsigned int gsi;
};

struct fixture {
	struct irq_rec rec;
	struct irq_line irq;
	struct uart *u;
	int pipe_rd, pipe_wr;
};

static void rec_set_level(void *opaque, unsigned int gsi, int level)
{
	struct irq_rec *r = opaque;

	/* The UART promises to drive only changes. */
	assert_int_not_equal(level, r->level);
	r->level = level;
	r->gsi = gsi;
	r->calls++;
	if (level)
		r->raises++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fds[2];

	assert_non_null(f);
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	f->pipe_rd = fds[0];
	f->pipe_wr = fds[1];
	f->irq.set_level = rec_set_level;
	f->irq.opaque = &f->rec;
	f->irq.gsi = UART_COM1_IRQ;
	f->u = uart_create(&f->irq, f->pipe_wr);
	assert_non_null(f->u);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	uart_destroy(f->u);
	close(f->pipe_rd);
	if (f->pipe_wr >= 0)
		close(f->pipe_wr);
	free(f);
	return 0;
}

static uint8_t in(struct uart *u, uint16_t off)
{
	uint32_t v = uart_io_ops.read(u, off, 1);

	assert_true(v <= 0xff);
	return v;
}

static void out(struct uart *u, uint16_t off, uint8_t val)
{
	uart_io_ops.write(u, off, 1, val);
}

static ssize_t drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	if (n < 0)
		assert_int_equal(errno, EAGAIN);
	return n;
}

/* autoconfig() and autoconfig_16550a() with CONFIG_SERIAL_8250_16550A_VARIANTS. */
static void test_autoconfig_16550a(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	uint8_t save_mcr, save_lcr, scratch, scratch2, scratch3, status1, status2;
	uint8_t iersave;

	/* IER existence test */
	scratch = in(u, IER);
	out(u, IER, 0);
	scratch2 = in(u, IER) & 0x0f;
	out(u, IER, 0x0f);
	scratch3 = in(u, IER) & 0x0f;
	out(u, IER, scratch);
	assert_int_equal(scratch2, 0);
	assert_int_equal(scratch3, 0x0f);

	save_mcr = in(u, MCR);
	save_lcr = in(u, LCR);

	/* loopback test */
	out(u, MCR, MCR_LOOP | 0x0a);
	status1 = in(u, MSR) & 0xf0;
	out(u, MCR, save_mcr);
	assert_int_equal(status1, 0x90);

	out(u, LCR, 0xbf);
	out(u, EFR, 0);
	out(u, LCR, 0);
	out(u, FCR, 0x01);
	scratch = in(u, IIR);
	assert_int_equal(scratch >> 6, 3);	/* 16550A */

	/* EFR at LCR = 0x80 (ST16C650V1) must read non-zero */
	out(u, LCR, 0x80);
	assert_int_not_equal(in(u, EFR), 0);
	/* EFR at LCR = 0xBF (ST16C650V2 etc.) must read non-zero too */
	out(u, LCR, 0xbf);
	assert_int_not_equal(in(u, EFR), 0);

	/* National SuperIO: EXCR1 must not follow MCR's LOOP bit */
	out(u, LCR, 0);
	status1 = in(u, MCR);
	out(u, LCR, 0xe0);
	status2 = in(u, 0x02);
	assert_int_equal((status2 ^ status1) & MCR_LOOP, 0);
	out(u, LCR, 0);
	out(u, MCR, status1 ^ MCR_LOOP);
	out(u, LCR, 0xe0);
	status2 = in(u, 0x02);
	out(u, LCR, 0);
	out(u, MCR, status1);
	assert_int_equal((status2 ^ status1) & MCR_LOOP, 0);

	/* TI16750: 64-byte FIFO bit must not stick, with or without DLAB */
	out(u, LCR, 0);
	out(u, FCR, 0x01 | 0x20);
	status1 = in(u, IIR) >> 5;
	out(u, FCR, 0x01);
	out(u, LCR, 0x80);
	out(u, FCR, 0x01 | 0x20);
	status2 = in(u, IIR) >> 5;
	out(u, FCR, 0x01);
	out(u, LCR, 0);
	assert_int_equal(status1, 6);
	assert_int_equal(status2, 6);

	/* Xscale: IER bit 6 (UUE) must not stick */
	iersave = in(u, IER);
	out(u, IER, iersave & ~0x40);
	assert_int_equal(in(u, IER) & 0x40, 0);
	out(u, IER, iersave | 0x40);
	assert_int_equal(in(u, IER) & 0x40, 0);
	out(u, IER, iersave);

	out(u, LCR, save_lcr);
	assert_int_equal(in(u, LCR), save_lcr);
	out(u, MCR, save_mcr);
	/* serial8250_clear_fifos() */
	out(u, FCR, 0x01);
	out(u, FCR, 0x07);
	out(u, FCR, 0);
	in(u, RX);
	out(u, IER, 0);

	assert_int_equal(in(u, IIR), IIR_NO_INT);	/* FIFOs off again */
	assert_int_equal(f->rec.calls, 0);		/* OUT2 was never set */
	/* nothing of the probe went out on the wire */
	assert_true(drain(f->pipe_rd, (char[4]){ 0 }, 4) < 0);
}

/* serial8250_do_startup(): the UART_BUG_THRE and UART_BUG_TXEN tests. */
static void test_startup_thre_tests(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	uint8_t iir1, iir, lsr;

	out(u, FCR, 0x01);
	out(u, FCR, 0x07);
	out(u, FCR, 0);
	in(u, LSR);
	in(u, RX);
	in(u, IIR);
	in(u, MSR);
	assert_int_not_equal(in(u, LSR), 0xff);

	/* THRE must be re-asserted when THRI is enabled again */
	assert_true(in(u, LSR) & LSR_THRE);
	out(u, IER, 0x02);
	iir1 = in(u, IIR);
	out(u, IER, 0);
	out(u, IER, 0x02);
	iir = in(u, IIR);
	out(u, IER, 0);
	assert_false(iir1 & IIR_NO_INT);
	assert_false(iir & IIR_NO_INT);

	out(u, LCR, 0x03);
	out(u, MCR, MCR_OUT2 | 0x03);

	/* enabling THRI must give an interrupt at once (no UART_BUG_TXEN) */
	out(u, IER, 0x02);
	lsr = in(u, LSR);
	iir = in(u, IIR);
	out(u, IER, 0);
	assert_true(lsr & LSR_TEMT);
	assert_false(iir & IIR_NO_INT);
	assert_int_equal(iir & IIR_ID, 0x02);
	/* the line went up while THRI was enabled, and back down */
	assert_int_equal(f->rec.raises, 1);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(f->rec.gsi, UART_COM1_IRQ);
}

static void test_scratch_and_lcr(void **state)
{
	struct uart *u = ((struct fixture *)*state)->u;
	static const uint8_t pat[] = { 0x00, 0x55, 0xaa, 0xff, 0x5a };
	unsigned int i;

	for (i = 0; i < sizeof(pat); i++) {
		out(u, SCR, pat[i]);
		assert_int_equal(in(u, SCR), pat[i]);
	}
	for (i = 0; i < sizeof(pat); i++) {
		out(u, LCR, pat[i] & 0x7f);
		assert_int_equal(in(u, LCR), pat[i] & 0x7f);
	}
	/* MCR keeps its 5 bits only */
	out(u, MCR, 0xff);
	assert_int_equal(in(u, MCR), 0x1f);
}

static void test_tx_to_pipe(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Linux version 6.1\r\n";
	char buf[64];
	size_t i;
	ssize_t n;

	for (i = 0; i < strlen(msg); i++) {
		/* what serial8250_console_putchar waits for */
		assert_true(in(f->u, LSR) & LSR_THRE);
		out(f->u, RX, msg[i]);
		assert_int_equal(in(f->u, LSR) & (LSR_THRE | LSR_TEMT),
				 LSR_THRE | LSR_TEMT);
	}
	n = drain(f->pipe_rd, buf, sizeof(buf));
	assert_int_equal(n, strlen(msg));
	assert_memory_equal(buf, msg, n);
}

static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
	sigpipes++;
}

static void test_tx_to_closed_pipe_drops(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;

	signal(SIGPIPE, count_sigpipe);
	close(f->pipe_rd);
	f->pipe_rd = open("/dev/null", O_RDONLY);
	assert_true(f->pipe_rd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	out(f->u, RX, 'x');
	out(f->u, RX, 'y');
	clock_gettime(CLOCK_MONOTONIC, &t1);
	signal(SIGPIPE, SIG_IGN);
	/* neither a signal nor a wait for a reader that is gone */
	assert_int_equal(sigpipes, 0);
	assert_true(t1.tv_sec - t0.tv_sec < 1);
	assert_true(in(f->u, LSR) & LSR_THRE);
}

/* A reader that stops reading costs one timeout, then bytes are dropped. */
static void test_tx_to_full_pipe_drops(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	char fill[4096];
	unsigned int i;

	memset(fill, '.', sizeof(fill));
	while (write(f->pipe_wr, fill, sizeof(fill)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100; i++)
		out(f->u, RX, 'x');
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	/* the reader comes back: output flows again */
	while (read(f->pipe_rd, fill, sizeof(fill)) > 0)
		;
	out(f->u, RX, 'y');
	assert_int_equal(drain(f->pipe_rd, fill, sizeof(fill)), 1);
	assert_int_equal(fill[0], 'y');
}

static void test_tx_discarded_without_fd(void **state)
{
	struct uart *u = uart_create(NULL, -1);

	assert_non_null(u);
	out(u, IER, 0x0f);
	out(u, MCR, MCR_OUT2);
	out(u, RX, 'a');	/* no fd, no irq line: must simply work */
	assert_int_equal(in(u, IIR) & IIR_ID, 0x02);
	uart_destroy(u);
}

static void test_rx_order_and_dr(void **state)
{
	struct uart *u = ((struct fixture *)*state)->u;
	const uint8_t data[] = "hello";
	unsigned int i;

	out(u, FCR, 0x01);
	assert_false(in(u, LSR) & LSR_DR);
	assert_int_equal(uart_rx_push(u, data, 5), 5);
	for (i = 0; i < 5; i++) {
		assert_true(in(u, LSR) & LSR_DR);
		assert_int_equal(in(u, RX), data[i]);
	}
	assert_false(in(u, LSR) & LSR_DR);
	assert_int_equal(uart_rx_space(u), UART_FIFO_SIZE);
}

static void test_rx_fifo_bound(void **state)
{
	struct uart *u = ((struct fixture *)*state)->u;
	uint8_t data[40];
	unsigned int i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = i;

	/* FIFOs off (reset state): a single holding register */
	assert_int_equal(uart_rx_space(u), 1);
	assert_int_equal(uart_rx_push(u, data, sizeof(data)), 1);
	assert_int_equal(uart_rx_push(u, data, sizeof(data)), 0);
	assert_int_equal(in(u, RX), 0);

	/* enabling the FIFO empties it and gives 16 bytes */
	out(u, FCR, 0x81);
	assert_int_equal(uart_rx_space(u), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_push(u, data, 10), 10);
	assert_int_equal(uart_rx_space(u), UART_FIFO_SIZE - 10);
	assert_int_equal(uart_rx_push(u, data + 10, 30), UART_FIFO_SIZE - 10);
	assert_int_equal(uart_rx_space(u), 0);
	assert_int_equal(uart_rx_push(u, data, 1), 0);
	assert_int_equal(in(u, RX), 0);
	assert_int_equal(uart_rx_space(u), 1);
	for (i = 1; i < UART_FIFO_SIZE; i++)
		assert_int_equal(in(u, RX), i);
	assert_false(in(u, LSR) & (LSR_DR | LSR_OE));

	/* FCR bit 1 empties the receiver */
	assert_int_equal(uart_rx_push(u, data, 3), 3);
	out(u, FCR, 0x03);
	assert_false(in(u, LSR) & LSR_DR);
	assert_int_equal(uart_rx_space(u), UART_FIFO_SIZE);

	/* loopback cuts the receiver off from the host */
	out(u, MCR, MCR_LOOP);
	assert_int_equal(uart_rx_space(u), 0);
	assert_int_equal(uart_rx_push(u, data, 3), 0);
}

static void test_irq_rx(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	const uint8_t b[2] = { 'a', 'b' };

	out(u, FCR, 0x01);
	assert_int_equal(uart_rx_push(u, b, 2), 2);
	/* pending data, but neither enabled nor gated through */
	assert_int_equal(f->rec.calls, 0);
	out(u, IER, 0x01);
	assert_int_equal(f->rec.calls, 0);
	assert_int_equal(in(u, IIR), 0xc4);
	/* OUT2 connects the interrupt to the bus */
	out(u, MCR, MCR_OUT2);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.gsi, UART_COM1_IRQ);
	out(u, MCR, 0);
	assert_int_equal(f->rec.level, 0);
	out(u, MCR, MCR_OUT2);
	assert_int_equal(f->rec.level, 1);
	/* IER off lowers it */
	out(u, IER, 0);
	assert_int_equal(f->rec.level, 0);
	out(u, IER, 0x01);
	assert_int_equal(f->rec.level, 1);
	/* still one byte left after the first read */
	assert_int_equal(in(u, RX), 'a');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(in(u, RX), 'b');
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, IIR), 0xc1);
	/* new input raises it from the main thread's side */
	assert_int_equal(uart_rx_push(u, b, 1), 1);
	assert_int_equal(f->rec.level, 1);
	in(u, RX);
	assert_int_equal(f->rec.level, 0);
	/* one driver call per edge, none repeated */
	assert_int_equal(f->rec.calls, 8);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	const uint8_t b = 'z';
	char buf[8];

	out(u, FCR, 0x01);
	out(u, MCR, MCR_OUT2);
	out(u, IER, 0x02);
	assert_int_equal(f->rec.level, 1);
	/* reading IIR while it reports THRE acknowledges it */
	assert_int_equal(in(u, IIR), 0xc2);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, IIR), 0xc1);
	/* a THR write re-arms it: the byte left at once */
	out(u, RX, 'A');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(drain(f->pipe_rd, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'A');

	/* received data outranks THRE; reading IIR then leaves THRE alone */
	out(u, IER, 0x03);
	assert_int_equal(uart_rx_push(u, &b, 1), 1);
	assert_int_equal(in(u, IIR), 0xc4);
	assert_int_equal(in(u, IIR), 0xc4);
	assert_int_equal(in(u, RX), 'z');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(in(u, IIR), 0xc2);
	assert_int_equal(in(u, IIR), 0xc1);
	assert_int_equal(f->rec.level, 0);

	/* stop_tx clears THRI: the line drops even with THRE pending */
	out(u, RX, 'B');
	assert_int_equal(f->rec.level, 1);
	out(u, IER, 0x01);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, IIR), 0xc1);
}

/* Linux's tx path: ISR, tx_chars, stop_tx when empty; must terminate. */
static void test_tx_irq_path_terminates(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	const char *msg = "0123456789abcdefghijklmnopqrstuvwxyz0123456789";
	size_t pos = 0, len = strlen(msg);
	uint8_t ier = 0x01;
	char buf[128];
	int loops = 0;

	out(u, FCR, 0x81);
	out(u, MCR, MCR_OUT2 | 0x03);
	out(u, IER, ier);
	/* start_tx */
	ier |= 0x02;
	out(u, IER, ier);
	while (f->rec.level) {
		uint8_t iir = in(u, IIR);
		unsigned int count = 16;

		assert_true(++loops < 100);
		if (iir & IIR_NO_INT)
			continue;
		if (!(in(u, LSR) & LSR_THRE) || !(ier & 0x02))
			continue;
		while (count-- && pos < len)
			out(u, RX, msg[pos++]);
		if (pos == len) {
			ier &= ~0x02;
			out(u, IER, ier);
		}
	}
	assert_int_equal(pos, len);
	assert_int_equal(drain(f->pipe_rd, buf, sizeof(buf)), len);
	assert_memory_equal(buf, msg, len);
}

static void test_dlab(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	char buf[4];

	/* a console port at 115200 out of reset: divisor never 0 */
	out(u, LCR, 0x83);
	assert_int_equal(in(u, RX) | in(u, IER) << 8, 1);

	out(u, RX, 0x0c);
	out(u, IER, 0x34);
	assert_int_equal(in(u, RX), 0x0c);
	assert_int_equal(in(u, IER), 0x34);
	/* the latch write went neither to THR nor to IER */
	assert_true(drain(f->pipe_rd, buf, sizeof(buf)) < 0);
	out(u, LCR, 0x03);
	assert_int_equal(in(u, IER), 0);
	out(u, IER, 0x05);
	out(u, LCR, 0x83);
	assert_int_equal(in(u, IER), 0x34);
	out(u, LCR, 0x03);
	assert_int_equal(in(u, IER), 0x05);

	/* a 16-bit access reaches DLL and DLM as two byte cycles */
	out(u, LCR, 0x83);
	uart_io_ops.write(u, 0, 2, 0x0180);
	assert_int_equal(in(u, RX), 0x80);
	assert_int_equal(in(u, IER), 0x01);
	assert_int_equal(uart_io_ops.read(u, 0, 2), 0x0180);
	out(u, LCR, 0x03);
	/* bytes past the last register read as nothing there */
	assert_int_equal(uart_io_ops.read(u, 7, 2) >> 8, 0xff);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;
	char buf[4];
	unsigned int i;

	out(u, FCR, 0x01);
	out(u, MCR, MCR_LOOP | MCR_OUT2);
	out(u, IER, 0x01);
	out(u, RX, 'L');
	out(u, RX, 'P');
	assert_true(in(u, LSR) & LSR_DR);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(in(u, RX), 'L');
	assert_int_equal(in(u, RX), 'P');
	assert_int_equal(f->rec.level, 0);
	assert_true(drain(f->pipe_rd, buf, sizeof(buf)) < 0);

	/* more than the FIFO holds: the rest is lost and flagged */
	for (i = 0; i < UART_FIFO_SIZE + 2; i++)
		out(u, RX, i);
	assert_int_equal(in(u, LSR) & (LSR_DR | LSR_OE), LSR_DR | LSR_OE);
	assert_false(in(u, LSR) & LSR_OE);	/* cleared by reading LSR */
	for (i = 0; i < UART_FIFO_SIZE; i++)
		assert_int_equal(in(u, RX), i);
	assert_false(in(u, LSR) & LSR_DR);

	/* MSR mirrors the outputs */
	out(u, MCR, MCR_LOOP | 0x01);
	assert_int_equal(in(u, MSR) & 0xf0, 0x20);	/* DTR -> DSR */
	out(u, MCR, MCR_LOOP | 0x02);
	assert_int_equal(in(u, MSR) & 0xf0, 0x10);	/* RTS -> CTS */
	out(u, MCR, MCR_LOOP | 0x04);
	assert_int_equal(in(u, MSR) & 0xf0, 0x40);	/* OUT1 -> RI */
	out(u, MCR, MCR_LOOP | 0x08);
	assert_int_equal(in(u, MSR) & 0xf0, 0x80);	/* OUT2 -> DCD */

	/* and out of loopback, TX is back on the wire */
	out(u, MCR, 0);
	out(u, RX, 'W');
	assert_int_equal(drain(f->pipe_rd, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'W');
	assert_false(in(u, LSR) & LSR_DR);
}

static void test_msr(void **state)
{
	struct fixture *f = *state;
	struct uart *u = f->u;

	/* a connected terminal: CTS, DSR, DCD; no change pending */
	assert_int_equal(in(u, MSR), 0xb0);
	assert_int_equal(in(u, MSR), 0xb0);

	out(u, MCR, MCR_OUT2);
	out(u, IER, 0x08);
	assert_int_equal(f->rec.level, 0);
	/* loopback with only OUT2: CTS and DSR dropped */
	out(u, MCR, MCR_LOOP | MCR_OUT2);
	assert_int_equal(in(u, IIR) & IIR_ID, 0x00);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(in(u, MSR), 0x80 | 0x01 | 0x02);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, IIR), IIR_NO_INT);
	/* RI: only the falling edge is flagged */
	out(u, MCR, MCR_LOOP | MCR_OUT2 | 0x04);
	assert_int_equal(in(u, MSR), 0xc0);
	out(u, MCR, MCR_LOOP | MCR_OUT2);
	assert_int_equal(in(u, MSR), 0x80 | 0x04);
}

static int notified;

static void count_notify(void *opaque)
{
	notified++;
	assert_ptr_equal(opaque, &notified);
}

static void test_rx_notify(void **state)
{
	struct uart *u = ((struct fixture *)*state)->u;
	uint8_t data[UART_FIFO_SIZE] = { 0 };

	notified = 0;
	uart_set_rx_notify(u, count_notify, &notified);
	out(u, FCR, 0x01);
	assert_int_equal(uart_rx_push(u, data, 4), 4);
	in(u, RX);
	assert_int_equal(notified, 0);		/* it was not full */
	assert_int_equal(uart_rx_push(u, data, sizeof(data)), 13);
	in(u, LSR);
	assert_int_equal(notified, 0);
	in(u, RX);
	assert_int_equal(notified, 1);		/* full -> room */
	in(u, RX);
	assert_int_equal(notified, 1);
	/* leaving loopback gives the host the receiver back */
	out(u, MCR, MCR_LOOP);
	out(u, MCR, 0);
	assert_int_equal(notified, 2);
	uart_set_rx_notify(u, NULL, NULL);
	out(u, MCR, MCR_LOOP);
	out(u, MCR, 0);
	assert_int_equal(notified, 2);
}

/* The main thread pushes while a vCPU reads: nothing lost or reordered. */
#define STREAM_LEN 20000

static void *pusher(void *arg)
{
	struct uart *u = arg;
	unsigned int sent = 0;

	while (sent < STREAM_LEN) {
		uint8_t b = sent * 7;

		if (uart_rx_push(u, &b, 1))
			sent++;
		else
			sched_yield();
	}
	return NULL;
}

static void test_concurrent_rx(void **state)
{
	struct uart *u = uart_create(NULL, -1);
	unsigned int got = 0, spins = 0;
	time_t start = time(NULL);
	pthread_t th;

	assert_non_null(u);
	out(u, FCR, 0x01);
	assert_int_equal(pthread_create(&th, NULL, pusher, u), 0);
	while (got < STREAM_LEN) {
		if (in(u, LSR) & LSR_DR) {
			assert_int_equal(in(u, RX), (uint8_t)(got * 7));
			got++;
		} else if (++spins % 65536 == 0) {
			/* A liveness bound, not a speed test: the host may be busy. */
			assert_true(time(NULL) - start < 120);
		}
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(in(u, LSR) & LSR_DR);
	uart_destroy(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_autoconfig_16550a, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_thre_tests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_and_lcr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_to_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_to_closed_pipe_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_to_full_pipe_drops, setup, teardown),
		cmocka_unit_test(test_tx_discarded_without_fd),
		cmocka_unit_test_setup_teardown(test_rx_order_and_dr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_fifo_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_irq_path_terminates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_notify, setup, teardown),
		cmocka_unit_test(test_concurrent_rx),
	};

	/* as the VMM does: a closed reader must cost bytes, not the process */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
