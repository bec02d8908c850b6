// SPDX-License-Identifier: MIT
/*
 * tinyvmm's seccomp filter, the very function tinyvmm installs, in forked
 * children: what tinyvmm's threads do keeps working, and a forbidden call
 * never runs -- the child dies by SIGSYS after one line naming the call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmm/options.h"
#include "vmm/seccomp.h"

/* Child exit codes for "a step before the forbidden call went wrong". */
#define CHILD_OK	0
#define CHILD_SETUP	10
#define CHILD_SURVIVED	11

static int hook_fd = -1;
static pid_t parent_pid;

static void hook(void)
{
	if (write(hook_fd, "H", 1) < 0)
		_exit(CHILD_SETUP + 5);
}

struct result {
	int status;
	char err[1024];		/* the child's stderr */
	char hook[8];		/* what hook() wrote */
};

/*
 * Run fn in a child with stderr and the hook on pipes; fn installs the
 * filter itself (to do things before it) and returns the exit code.
 */
static void run_child(int (*fn)(void *), void *arg, struct result *r)
{
	int errp[2], hookp[2];
	ssize_t n;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	assert_int_equal(pipe(errp), 0);
	assert_int_equal(pipe(hookp), 0);
	fflush(NULL);
	parent_pid = getpid();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(errp[0]);
		close(hookp[0]);
		dup2(errp[1], STDERR_FILENO);
		hook_fd = hookp[1];
		_exit(fn(arg));
	}
	close(errp[1]);
	close(hookp[1]);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
	n = read(errp[0], r->err, sizeof(r->err) - 1);
	r->err[n > 0 ? n : 0] = 0;
	n = read(hookp[0], r->hook, sizeof(r->hook) - 1);
	r->hook[n > 0 ? n : 0] = 0;
	close(errp[0]);
	close(hookp[0]);
}

static int install(void)
{
	return vmm_seccomp_install(0, hook);
}

static void assert_killed_by(const struct result *r, const char *name)
{
	char want[128];

	if (!WIFSIGNALED(r->status))
		fail_msg("child not killed: exit %d, stderr '%s'", WEXITSTATUS(r->status), r->err);
	assert_int_equal(WTERMSIG(r->status), SIGSYS);
	snprintf(want, sizeof(want), "tinyvmm: error: seccomp: forbidden system call %s (", name);
	if (strncmp(r->err, want, strlen(want)))
		fail_msg("stderr '%s' does not start with '%s'", r->err, want);
	/* exactly one line */
	assert_ptr_equal(strchr(r->err, '\n'), r->err + strlen(r->err) - 1);
	assert_string_equal(r->hook, "H");
}

static void *thread_fn(void *arg)
{
	char name[16];

	/* What a vCPU thread does to itself. */
	if (pthread_setname_np(pthread_self(), "vcpu0") ||
	    pthread_getname_np(pthread_self(), name, sizeof(name)))
		return (void *)1;
	return strcmp(name, "vcpu0") ? (void *)1 : malloc(100000);
}

static void usr1(int sig)
{
}

/* What tinyvmm's threads do after the filter: all of it must work. */
static int child_allowed(void *arg)
{
	struct sigaction sa = { .sa_handler = usr1 };
	time_t now = time(NULL);
	uint64_t v = 1;
	struct tm tm;
	void *p, *ret;
	pthread_t t;
	int efd, i;

	if (install())
		return CHILD_SETUP;
	/* the CMOS RTC's first gmtime_r() in a vCPU thread */
	if (!gmtime_r(&now, &tm))
		return CHILD_SETUP + 8;
	if (getpid() <= 0 || write(STDERR_FILENO, "", 0) < 0)
		return CHILD_SETUP + 1;
	/* eventfds, as the kick/irq/stop paths use them */
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0 || write(efd, &v, 8) != 8 || read(efd, &v, 8) != 8 || v != 1)
		return CHILD_SETUP + 2;
	close(efd);
	/* threads come and go (vCPUs), memory is allocated and freed */
	for (i = 0; i < 4; i++) {
		if (pthread_create(&t, NULL, thread_fn, NULL) || pthread_join(t, &ret) ||
		    ret == NULL || ret == (void *)1)
			return CHILD_SETUP + 3;
		free(ret);
	}
	p = malloc(64 << 20);
	if (!p)
		return CHILD_SETUP + 4;
	memset(p, 1, 64 << 20);
	p = realloc(p, 128 << 20);
	free(p);
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, 1 << 20))
		return CHILD_SETUP + 5;
	/* the kick: SIGUSR1 to ourselves through pthread_kill */
	if (sigaction(SIGUSR1, &sa, NULL) || pthread_kill(pthread_self(), SIGUSR1))
		return CHILD_SETUP + 6;
	/* the terminal's ioctls are allowed (ENOTTY on a pipe is fine) */
	if (isatty(STDERR_FILENO) < 0)
		return CHILD_SETUP + 7;
	/* exit() runs atexit handlers, stdio flush and, under ASan, the leak check */
	exit(CHILD_OK);
}

static void test_allowed(void **state)
{
	struct result r;

	run_child(child_allowed, NULL, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != CHILD_OK)
		fail_msg("child: status 0x%x, stderr '%s'", r.status, r.err);
	assert_string_equal(r.err, "");
	assert_string_equal(r.hook, "");
}

enum forbidden {
	F_SOCKET, F_EXECVE, F_FORK, F_OPEN_WRITE, F_OPEN_READ, F_IOCTL_TIOCSTI,
	F_MMAP_EXEC, F_KILL_OTHER, F_SIGACTION_SIGSYS, F_THREAD_BEFORE, F_URING_SETUP,
	F_URING_REGISTER,
};

static void *thread_socket(void *arg)
{
	int *go = arg;
	char c;

	/* Started before the filter, like the disk threads: TSYNC covers it. */
	if (read(go[0], &c, 1) != 1)
		return NULL;
	socket(AF_INET, SOCK_STREAM, 0);
	_exit(CHILD_SURVIVED);
}

static int child_forbidden(void *arg)
{
	enum forbidden what = (enum forbidden)(uintptr_t)arg;
	char *argv[] = { "/bin/true", NULL };
	pthread_t t;
	int go[2];
	void *p;

	if (what == F_THREAD_BEFORE &&
	    (pipe(go) || pthread_create(&t, NULL, thread_socket, go)))
		return CHILD_SETUP;
	if (install())
		return CHILD_SETUP + 1;
	switch (what) {
	case F_SOCKET:
		socket(AF_INET, SOCK_STREAM, 0);
		break;
	case F_EXECVE:
		execve(argv[0], argv, NULL);
		break;
	case F_FORK:
		fork();
		break;
	case F_OPEN_WRITE:
		open("/dev/null", O_WRONLY);
		break;
	case F_OPEN_READ:
		open("/dev/null", O_RDONLY);
		break;
	case F_IOCTL_TIOCSTI:
		ioctl(STDIN_FILENO, TIOCSTI, "x");
		break;
	case F_MMAP_EXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		(void)p;
		break;
	case F_KILL_OTHER:
		syscall(SYS_tgkill, parent_pid, parent_pid, 0);
		break;
	case F_SIGACTION_SIGSYS:
		/* An exploit's own SIGSYS handler would turn refusals into errors. */
		signal(SIGSYS, SIG_IGN);
		return CHILD_SURVIVED;
	case F_URING_SETUP: {
		/* A fresh ring would be unrestricted, and seccomp cannot see into it. */
		unsigned char params[120] = { 0 };

		syscall(SYS_io_uring_setup, 4, params);
		break;
	}
	case F_URING_REGISTER:
		syscall(SYS_io_uring_register, 0, 0, NULL, 0);
		break;
	case F_THREAD_BEFORE:
		if (write(go[1], "g", 1) != 1)
			return CHILD_SETUP + 2;
		poll(NULL, 0, -1);	/* as the main loop waits */
		break;
	}
	return CHILD_SURVIVED;
}

static void expect_forbidden(enum forbidden what, const char *name)
{
	struct result r;

	run_child(child_forbidden, (void *)(uintptr_t)what, &r);
	assert_killed_by(&r, name);
}

static void test_socket(void **state)
{
	expect_forbidden(F_SOCKET, "socket");
}

static void test_execve(void **state)
{
	if (vmm_seccomp_sanitizer_build())
		skip();		/* the sanitizers' symbolizer needs it */
	expect_forbidden(F_EXECVE, "execve");
}

static void test_fork(void **state)
{
	/* glibc: clone3 gets ENOSYS, then clone without CLONE_THREAD */
	if (vmm_seccomp_sanitizer_build())
		skip();		/* LSan's leak check clones a tracer */
	expect_forbidden(F_FORK, "clone");
}

static void test_open(void **state)
{
	struct result r;

	expect_forbidden(F_OPEN_WRITE, "openat");
	/* Reading opens only with VMM_SECCOMP_RO_OPEN (--stats) or sanitizers. */
	run_child(child_forbidden, (void *)(uintptr_t)F_OPEN_READ, &r);
	if (vmm_seccomp_sanitizer_build())
		assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == CHILD_SURVIVED);
	else
		assert_killed_by(&r, "openat");
}

static void test_ioctl(void **state)
{
	expect_forbidden(F_IOCTL_TIOCSTI, "ioctl");
}

static void test_mmap_exec(void **state)
{
	expect_forbidden(F_MMAP_EXEC, "mmap");
}

static void test_io_uring_setup(void **state)
{
	expect_forbidden(F_URING_SETUP, "io_uring_setup");
	expect_forbidden(F_URING_REGISTER, "io_uring_register");
}

static void test_kill_other(void **state)
{
	expect_forbidden(F_KILL_OTHER, "tgkill");
}

/* Changing SIGSYS's handler kills outright (no line: not the trap). */
static void test_sigaction_sigsys(void **state)
{
	struct result r;

	run_child(child_forbidden, (void *)(uintptr_t)F_SIGACTION_SIGSYS, &r);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGSYS);
}

static void test_thread_started_before(void **state)
{
	expect_forbidden(F_THREAD_BEFORE, "socket");
}

static int child_ro_open(void *arg)
{
	char buf[64];
	int fd;

	if (vmm_seccomp_install(VMM_SECCOMP_RO_OPEN, hook))
		return CHILD_SETUP;
	fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		return CHILD_SETUP + 1;
	close(fd);
	open("/tmp/tvmm-seccomp-new", O_WRONLY | O_CREAT, 0600);
	return CHILD_SURVIVED;
}

static void test_ro_open_flag(void **state)
{
	struct result r;

	run_child(child_ro_open, NULL, &r);
	assert_killed_by(&r, "openat");
}

/*
 * An NBD disk's flag (VMM_SECCOMP_NET_UNIX): stream sockets of that
 * family may be made (a reconnect) and connected; any other family or
 * type is still forbidden.
 */
static int child_net(void *arg)
{
	int what = (int)(uintptr_t)arg, fd;
	struct msghdr msg = { 0 };

	if (vmm_seccomp_install(VMM_SECCOMP_NET_UNIX | VMM_SECCOMP_NET_INET, hook))
		return CHILD_SETUP;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CHILD_SETUP + 1;
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CHILD_SETUP + 2;
	close(fd);
	if (what == 1)
		socket(AF_INET6, SOCK_STREAM, 0);
	else if (what == 2)
		socket(AF_UNIX, SOCK_DGRAM, 0);
	else if (what == 3)
		socket(AF_INET, SOCK_STREAM, 262);	/* IPPROTO_MPTCP */
	else if (what == 4)
		recvmsg(-1, &msg, 0);
	else if (what == 5)
		sendmsg(-1, &msg, 0);
	else
		return CHILD_OK;
	return CHILD_SURVIVED;
}

static void test_net_flag(void **state)
{
	struct result r;

	run_child(child_net, (void *)0, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != CHILD_OK)
		fail_msg("child: status 0x%x, stderr '%s'", r.status, r.err);
	run_child(child_net, (void *)1, &r);
	assert_killed_by(&r, "socket");
	run_child(child_net, (void *)2, &r);
	assert_killed_by(&r, "socket");
	run_child(child_net, (void *)3, &r);
	assert_killed_by(&r, "socket");
	run_child(child_net, (void *)4, &r);
	assert_killed_by(&r, "recvmsg");
	run_child(child_net, (void *)5, &r);
	assert_killed_by(&r, "sendmsg");
	assert_int_equal(vmm_seccomp_socket_flag(AF_UNIX), VMM_SECCOMP_NET_UNIX);
	assert_int_equal(vmm_seccomp_socket_flag(AF_INET6), VMM_SECCOMP_NET_INET6);
	assert_int_equal(vmm_seccomp_socket_flag(0), 0);
}

static void test_option(void **state)
{
	char *with[] = { "tinyvmm", "--no-seccomp", "k", NULL };
	char *without[] = { "tinyvmm", "k", NULL };
	struct options o;

	assert_int_equal(options_parse(&o, 2, without), 0);
	assert_true(o.seccomp);
	options_free(&o);
	assert_int_equal(options_parse(&o, 3, with), 0);
	assert_false(o.seccomp);
	options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_socket),
		cmocka_unit_test(test_execve),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_ioctl),
		cmocka_unit_test(test_mmap_exec),
		cmocka_unit_test(test_kill_other),
		cmocka_unit_test(test_io_uring_setup),
		cmocka_unit_test(test_sigaction_sigsys),
		cmocka_unit_test(test_thread_started_before),
		cmocka_unit_test(test_ro_open_flag),
		cmocka_unit_test(test_net_flag),
		cmocka_unit_test(test_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
