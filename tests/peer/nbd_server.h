/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_PEER_NBD_SERVER_H
#define TINYVMM_TESTS_PEER_NBD_SERVER_H

/*
 * nbdkit as the peer of the NBD engine's tests: started in the
 * foreground (-f, --exit-with-parent) on a unix socket in a temp dir of
 * its own, or on a free TCP port of 127.0.0.1, and waited for (bounded)
 * until it accepts connections.  A missing nbdkit fails the test with a
 * line saying the NBD tests did NOT run: never a skip, never a pass.
 * nbdkit's own output goes to a log in the temp dir, shown when it dies
 * before serving.
 */
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#define NBD_SERVER_MAX_ARGS	16

struct nbd_server {
	pid_t pid;			/* 0: not running */
	bool tcp;
	int port;			/* tcp */
	char dir[PATH_MAX];		/* the temp dir (socket, log, files) */
	char sock[PATH_MAX + 16];	/* unix */
	char uri[PATH_MAX + 64];	/* what disk_open() is given */
	char log[PATH_MAX + 16];
};

/* Make the temp dir and pick the socket (or a free port of 127.0.0.1) and URI. */
void nbd_server_init(struct nbd_server *s, bool tcp);
/*
 * Start nbdkit with args (NULL-terminated: "-r", filters, the plugin and
 * its parameters), again on the same socket or port after a kill.  Fails
 * the test (cmocka) if it does not serve within 10 s.
 */
void nbd_server_start(struct nbd_server *s, const char *const *args);
/* SIGKILL, and wait for it. */
void nbd_server_kill(struct nbd_server *s);
/* Kill it and remove the temp dir with what is in it. */
void nbd_server_stop(struct nbd_server *s);
/* A path in the server's temp dir, for files the plugin serves. */
void nbd_server_path(const struct nbd_server *s, const char *name, char *out, size_t len);

#endif
