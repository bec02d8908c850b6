// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "devices/serial/uart16550.h"
#include "lib/util.h"
#include "vmm/console.h"

#define CTRL_A 0x01

static struct termios saved_tio;
static int saved_fd = -1;

void console_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved_tio);
		saved_fd = -1;
	}
}

/* A crash must not leave the user's terminal raw. */
static void console_fatal_signal(int sig)
{
	console_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

void console_init(struct console *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
}

int console_raw(struct console *c)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct termios tio;
	size_t i;

	if (!isatty(c->fd))
		return 0;
	if (tcgetattr(c->fd, &saved_tio) < 0)
		return -errno;
	tio = saved_tio;
	/*
	 * Input goes to the guest byte by byte, Ctrl-C included; output
	 * post-processing stays on so our own log lines keep their CR.
	 */
	tio.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	tio.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	tio.c_cflag &= ~(CSIZE | PARENB);
	tio.c_cflag |= CS8;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(c->fd, TCSANOW, &tio) < 0)
		return -errno;
	saved_fd = c->fd;
	atexit(console_restore);
	for (i = 0; i < ARRAY_SIZE(fatal); i++)
		signal(fatal[i], console_fatal_signal);
	return 0;
}

bool console_filter(struct console *c, const uint8_t *in, size_t len,
		    uint8_t *out, size_t *out_len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		uint8_t b = in[i];

		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				*out_len = n;
				return true;
			}
			if (b == CTRL_A)
				out[n++] = CTRL_A;
			/* Any other key after Ctrl-A is dropped, as in QEMU. */
			continue;
		}
		if (b == CTRL_A) {
			c->escape = true;
			continue;
		}
		out[n++] = b;
	}
	*out_len = n;
	return false;
}

void console_flush_pending(struct console *c, struct uart *u)
{
	size_t n;

	if (!c->nr_pending)
		return;
	n = uart_rx_push(u, c->pending, c->nr_pending);
	memmove(c->pending, c->pending + n, c->nr_pending - n);
	c->nr_pending -= n;
}

bool console_wants_input(struct console *c, struct uart *u)
{
	console_flush_pending(c, u);
	return c->nr_pending == 0;
}

enum console_event console_input(struct console *c, struct uart *u)
{
	uint8_t buf[sizeof(c->pending)];
	size_t n;
	ssize_t r;

	r = read(c->fd, buf, sizeof(buf) - c->nr_pending);
	if (r < 0)
		return (errno == EINTR || errno == EAGAIN) ? CONSOLE_OK : CONSOLE_EOF;
	if (r == 0)
		return CONSOLE_EOF;
	if (console_filter(c, buf, r, c->pending + c->nr_pending, &n))
		return CONSOLE_QUIT;
	c->nr_pending += n;
	console_flush_pending(c, u);
	return CONSOLE_OK;
}
