// SPDX-License-Identifier: MIT
/*
 * nbdkit for the NBD engine's tests (see nbd_server.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/peer/nbd_server.h"

#define SERVE_WAIT_MS	10000

static const char *tmp_base(void)
{
	const char *dir = getenv("TMPDIR");

	return dir && *dir ? dir : "/tmp";
}

/* A port of 127.0.0.1 nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

void nbd_server_init(struct nbd_server *s, bool tcp)
{
	memset(s, 0, sizeof(*s));
	s->tcp = tcp;
	snprintf(s->dir, sizeof(s->dir), "%s/tvmm-nbd-XXXXXX", tmp_base());
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->log, sizeof(s->log), "%s/nbdkit.log", s->dir);
	if (tcp) {
		s->port = free_port();
		snprintf(s->uri, sizeof(s->uri), "nbd://127.0.0.1:%d/", s->port);
	} else {
		snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
		snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
	}
}

void nbd_server_path(const struct nbd_server *s, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", s->dir, name);
}

/* Whether the server accepts a connection now. */
static bool serving(const struct nbd_server *s)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(s->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(s->tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	assert_true(strlen(s->sock) < sizeof(un.sun_path));
	memcpy(un.sun_path, s->sock, strlen(s->sock) + 1);
	ok = s->tcp ? connect(fd, (struct sockaddr *)&in, sizeof(in)) == 0 :
		      connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0;
	close(fd);
	return ok;
}

static void server_exec(struct nbd_server *s, const char *const *args)
{
	const char *argv[NBD_SERVER_MAX_ARGS + 10];
	char port[16];
	unsigned int n = 0;
	int fd;

	argv[n++] = "nbdkit";
	argv[n++] = "-f";
	argv[n++] = "--exit-with-parent";
	if (s->tcp) {
		snprintf(port, sizeof(port), "%d", s->port);
		argv[n++] = "-i";
		argv[n++] = "127.0.0.1";
		argv[n++] = "-p";
		argv[n++] = port;
	} else {
		argv[n++] = "-U";
		argv[n++] = s->sock;
	}
	while (*args && n < NBD_SERVER_MAX_ARGS + 9)
		argv[n++] = *args++;
	argv[n] = NULL;
	fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	execvp(argv[0], (char **)argv);
	fprintf(stderr, "cannot run nbdkit: %s\n", strerror(errno));
	_exit(127);
}

static void show_log(const struct nbd_server *s)
{
	char buf[2048];
	ssize_t k;
	int fd = open(s->log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	k = read(fd, buf, sizeof(buf) - 1);
	buf[k > 0 ? k : 0] = 0;
	fprintf(stderr, "nbdkit's log:\n%s\n", buf);
	close(fd);
}

void nbd_server_start(struct nbd_server *s, const char *const *args)
{
	const struct timespec tick = { 0, 10 * 1000000 };
	int status, waited;

	if (!s->tcp)
		unlink(s->sock);	/* left by a killed server */
	fflush(NULL);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0)
		server_exec(s, args);
	for (waited = 0; waited < SERVE_WAIT_MS; waited += 10) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			show_log(s);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
				fail_msg("nbdkit is not installed (Debian package nbdkit): "
					 "the NBD tests did NOT run");
			fail_msg("nbdkit exited (status 0x%x) before serving", status);
		}
		if (serving(s))
			return;
		nanosleep(&tick, NULL);
	}
	show_log(s);
	fail_msg("nbdkit does not serve %s after %d ms", s->uri, SERVE_WAIT_MS);
}

void nbd_server_kill(struct nbd_server *s)
{
	if (!s->pid)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

void nbd_server_stop(struct nbd_server *s)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	nbd_server_kill(s);
	if (!s->dir[0])
		return;
	d = opendir(s->dir);
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(s->dir);
	s->dir[0] = 0;
}
