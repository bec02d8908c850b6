/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_CONSOLE_H
#define TINYVMM_CONSOLE_H

/*
 * The host side of the serial console: stdin into the UART, with the
 * terminal in raw mode while the guest runs (restored on every way out),
 * and the Ctrl-A escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uart;

enum console_event {
	CONSOLE_OK = 0,
	CONSOLE_QUIT,		/* the user typed Ctrl-A x */
	CONSOLE_EOF,		/* stdin is closed: stop polling it */
};

struct console {
	int fd;
	bool escape;		/* the last byte was Ctrl-A */
	uint8_t pending[256];	/* read from stdin, not yet taken by the UART */
	size_t nr_pending;
};

void console_init(struct console *c, int fd);
/* Raw mode if fd is a terminal; the restore runs from atexit too. */
int console_raw(struct console *c);
void console_restore(void);

/* Whether console_input() can make progress without blocking the UART. */
bool console_wants_input(struct console *c, struct uart *u);
/* Read what is there and feed the UART; call when fd is readable. */
enum console_event console_input(struct console *c, struct uart *u);
/* Feed bytes already read; used when the UART had no room. */
void console_flush_pending(struct console *c, struct uart *u);

/* Pure escape filter, exposed for the unit test: returns quit or not. */
bool console_filter(struct console *c, const uint8_t *in, size_t len,
		    uint8_t *out, size_t *out_len);

#endif
