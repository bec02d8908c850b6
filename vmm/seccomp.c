// SPDX-License-Identifier: MIT
/*
 * The system call filter: once the VM is built, tinyvmm only moves bytes
 * between fds it already holds (KVM, eventfds, images, the console), runs
 * KVM_RUN, and manages its own threads and memory.  Everything else --
 * opening files for writing, sockets, exec, fork, ptrace, signals to
 * other processes, executable mappings, arbitrary ioctls -- is refused.
 * The one exception is asked for by flag: an NBD disk reconnects after a
 * lost connection, so it may make stream sockets of the address family
 * its server was first reached on, and connect them (libnbd does it with
 * the TCP address saved at start-up or the URI's socket path: no name
 * lookup, no files).
 *
 * Default action: SCMP_ACT_TRAP, with a SIGSYS handler that says which
 * call it was in one line and ends the process by SIGSYS.  A forbidden
 * call means a compromised VMM or a gap in this list; either way carrying
 * on with an error return (EPERM) is wrong: an exploit could probe at
 * leisure, and a gap would show up as some odd failure far away (a disk
 * error in the guest, a thread that did not start).  The trap is as final
 * as SCMP_ACT_KILL_PROCESS but names the call and restores the terminal.
 * It cannot be turned into a soft failure: rt_sigaction() on SIGSYS kills
 * the process outright (the handler uses exactly that to end it), and a
 * blocked or ignored SIGSYS makes the kernel kill the process instead.
 *
 * Sanitizer builds (ASan/UBSan/LSan) get more: the runtime's leak check at
 * exit stops the world with clone() + ptrace() and reads /proc, its error
 * reports fork a symbolizer.  Those builds are for tests, never deployed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/seccomp.h"

#if defined(TINYVMM_SECCOMP_SANITIZERS) || defined(__SANITIZE_ADDRESS__) || \
	defined(__SANITIZE_THREAD__)
#define SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define SANITIZERS 1
#endif
#endif
#ifndef SANITIZERS
#define SANITIZERS 0
#endif

int vmm_seccomp_sanitizer_build(void)
{
	return SANITIZERS;
}

/* Allowed with any arguments, by every thread. */
static const char *const allowed[] = {
	/* I/O on fds opened before the filter: console, eventfds, images */
	"read", "write", "readv", "writev",
	"pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
	"fsync", "fdatasync", "lseek", "fstat", "close",
	"fallocate",			/* DISCARD and WRITE_ZEROES on image files */
	"eventfd2", "signalfd4",	/* vm_run()'s signalfd */
	/*
	 * the io_uring disk engine: only entering the rings made (and
	 * restricted to four opcodes) before the filter; io_uring_setup and
	 * io_uring_register would let a compromised tinyvmm make an
	 * unrestricted ring, whose operations seccomp never sees.
	 */
	"io_uring_enter",
	/* waiting: poll loops, locks, the vCPU kick */
	"poll", "ppoll", "futex", "nanosleep", "clock_nanosleep", "sched_yield",
	"restart_syscall",
	/* memory: malloc, thread stacks, --stats' mincore */
	"munmap", "mremap", "madvise", "mincore", "brk",
	/* threads (pthread_create, pthread_exit) and signals */
	"set_robust_list", "rseq", "exit", "exit_group", "getpid", "gettid",
	"rt_sigprocmask", "rt_sigreturn",
	/* time where the vDSO falls back to the kernel; RTC, --stats */
	"clock_gettime", "clock_getres", "gettimeofday", "time",
	"getrandom",
	/* malloc, from the 9th arena on (many vCPU and disk threads) */
	"sched_getaffinity",
};

/*
 * A disk on a socket (VMM_SECCOMP_NET_*: an NBD export), on top of the
 * above: libnbd's send()/recv() on it (sendto/recvfrom; not recvmsg,
 * which on a unix socket could take in fds), a reconnect's non-blocking
 * connect() and its SO_ERROR, and moving the new socket into the notify
 * fd (an epoll set); socket() and libnbd's TCP_NODELAY come
 * below, with their arguments checked.
 */
static const char *const allowed_net[] = {
	"sendto", "recvfrom", "connect", "getsockopt",
	"epoll_ctl",		/* the engine's notify fd follows the socket */
};

static const struct {
	unsigned int flag;
	int family;
} net_families[] = {
	{ VMM_SECCOMP_NET_UNIX, AF_UNIX },
	{ VMM_SECCOMP_NET_INET, AF_INET },
	{ VMM_SECCOMP_NET_INET6, AF_INET6 },
};

/* Sanitizer runtimes only: leak check at exit, reports, symbolizer. */
static const char *const allowed_sanitizers[] = {
	"ptrace", "wait4", "waitid", "getppid", "kill", "sigaltstack",
	"readlink", "readlinkat", "getdents", "getdents64",
	"pipe", "pipe2", "dup", "dup2", "dup3", "fcntl", "execve",
	"stat", "lstat", "newfstatat", "access", "faccessat", "uname",
	"getrlimit", "prlimit64", "getrusage", "prctl", "clone",
};

/* ioctl()s after start-up: vCPU run and its exits, irqs, the terminal. */
static const unsigned long allowed_ioctls[] = {
	KVM_RUN, KVM_IRQ_LINE, KVM_IOEVENTFD, KVM_IRQFD,
	KVM_SET_GSI_ROUTING,		/* the guest programs an MSI-X vector */
	KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_TRANSLATE, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
	TCGETS, TCSETS, TCSETSW, TCSETSF,
	BLKDISCARD, BLKZEROOUT,		/* DISCARD and WRITE_ZEROES on block devices */
};

/* Syscall names for the SIGSYS line, looked up before the filter. */
#define NAMES_MAX	512
static uint16_t name_off[NAMES_MAX];
static char name_pool[8192];
static void (*violation_hook)(void);

static void names_init(void)
{
	size_t used = 1;	/* offset 0: unknown */
	int nr;

	for (nr = 0; nr < NAMES_MAX; nr++) {
		char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		size_t len = n ? strlen(n) + 1 : 0;

		if (n && used + len <= sizeof(name_pool)) {
			memcpy(name_pool + used, n, len);
			name_off[nr] = used;
			used += len;
		}
		free(n);
	}
}

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned int v)
{
	char tmp[12];
	size_t n = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n && at < cap)
		buf[at++] = tmp[--n];
	return at;
}

/* Async-signal-safe: no stdio, no allocation, only allowed calls. */
static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	char line[192];
	size_t n = 0, cap = sizeof(line) - 1;
	int nr = si->si_syscall;

	n = put_str(line, n, cap, "tinyvmm: error: seccomp: forbidden system call ");
	if (nr >= 0 && nr < NAMES_MAX && name_off[nr]) {
		n = put_str(line, n, cap, name_pool + name_off[nr]);
		n = put_str(line, n, cap, " (");
		n = put_uint(line, n, cap, nr);
		n = put_str(line, n, cap, ")");
	} else {
		n = put_uint(line, n, cap, (unsigned int)nr);
	}
	n = put_str(line, n, cap, "; --no-seccomp turns the filter off");
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to say it */
	}
	if (violation_hook)
		violation_hook();
	/* The filter answers this one by killing the process with SIGSYS. */
	syscall(SYS_rt_sigaction, SIGSYS, NULL, NULL, 8);
	_exit(128 + SIGSYS);
}

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name,
	       unsigned int nargs, const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;	/* unknown to this libseccomp: stays forbidden */
	return seccomp_rule_add_array(ctx, action, nr, nargs, args);
}

#define ADD(ctx, action, name, ...) ({					\
	const struct scmp_arg_cmp a_[] = { __VA_ARGS__ };		\
	add(ctx, action, name, ARRAY_SIZE(a_), a_);			\
})

unsigned int vmm_seccomp_socket_flag(int family)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(net_families); i++)
		if (net_families[i].family == family)
			return net_families[i].flag;
	return 0;
}

/* What a disk on a socket needs: stream sockets of its families only. */
static int build_net(scmp_filter_ctx ctx, unsigned int flags)
{
	size_t i;
	int ret = 0;

	if (!(flags & (VMM_SECCOMP_NET_UNIX | VMM_SECCOMP_NET_INET | VMM_SECCOMP_NET_INET6)))
		return 0;
	for (i = 0; !ret && i < ARRAY_SIZE(allowed_net); i++)
		ret = add(ctx, SCMP_ACT_ALLOW, allowed_net[i], 0, NULL);
	/* libnbd sets it on every new connection (unix sockets refuse it). */
	ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "setsockopt", SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP),
			 SCMP_A2(SCMP_CMP_EQ, TCP_NODELAY));
	for (i = 0; !ret && i < ARRAY_SIZE(net_families); i++) {
		if (!(flags & net_families[i].flag))
			continue;
		/*
		 * The type's low bits; SOCK_NONBLOCK and SOCK_CLOEXEC may be
		 * or'ed in.  Protocol 0 only: the family's plain stream
		 * protocol, not another one such as MPTCP.
		 */
		ret = ADD(ctx, SCMP_ACT_ALLOW, "socket",
			  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)net_families[i].family),
			  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM), SCMP_A2(SCMP_CMP_EQ, 0));
	}
	return ret;
}

static int build(scmp_filter_ctx ctx, unsigned int flags)
{
	const int open_mask = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < ARRAY_SIZE(allowed); i++)
		ret = add(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL);
	for (i = 0; SANITIZERS && !ret && i < ARRAY_SIZE(allowed_sanitizers); i++)
		ret = add(ctx, SCMP_ACT_ALLOW, allowed_sanitizers[i], 0, NULL);
	for (i = 0; !ret && i < ARRAY_SIZE(allowed_ioctls); i++)
		ret = ADD(ctx, SCMP_ACT_ALLOW, "ioctl",
			  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, allowed_ioctls[i]));

	/* No executable memory: W^X for anything injected. */
	ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "mprotect",
			 SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Signals only to ourselves: pthread_kill (vCPU kick), raise, abort. */
	ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "tgkill", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	/* Any handler but SIGSYS's; touching that one ends the process. */
	ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "rt_sigaction", SCMP_A0(SCMP_CMP_NE, SIGSYS));
	ret = ret ?: ADD(ctx, SCMP_ACT_KILL_PROCESS, "rt_sigaction", SCMP_A0(SCMP_CMP_EQ, SIGSYS));
	/* glibc tries clone3 first; its flags are out of reach, clone's are not. */
	ret = ret ?: add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	if (!SANITIZERS) {
		/* Threads, never processes. */
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "clone",
				 SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
		/* pthread_setname_np() on the calling thread */
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
		/* glibc's fstat() is fstatat(fd, "", AT_EMPTY_PATH) */
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "newfstatat",
				 SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	}
	if (SANITIZERS || (flags & VMM_SECCOMP_RO_OPEN)) {
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "openat",
				 SCMP_A2(SCMP_CMP_MASKED_EQ, open_mask, O_RDONLY));
		ret = ret ?: ADD(ctx, SCMP_ACT_ALLOW, "open",
				 SCMP_A1(SCMP_CMP_MASKED_EQ, open_mask, O_RDONLY));
	}
	return ret ?: build_net(ctx, flags);
}

int vmm_seccomp_install(unsigned int flags, void (*on_violation)(void))
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	const char *what;
	int ret;

	/*
	 * What the C library does lazily, done now while it may: the first
	 * gmtime_r() (the CMOS RTC, in a vCPU thread) reads /etc/localtime.
	 */
	tzset();
	names_init();
	violation_hook = on_violation;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		ret = -errno;
		pr_err("seccomp: cannot install the SIGSYS handler: %s", strerror(-ret));
		return ret;
	}

	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		pr_err("seccomp: cannot create the filter: out of memory");
		return -ENOMEM;
	}
	what = "cannot set the filter's attributes";
	/* Another ABI (i386 int 0x80, x32) is never right here. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* Every thread: the device threads already run. */
	ret = ret ?: seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!ret) {
		what = "cannot build the filter";
		ret = build(ctx, flags);
	}
	if (!ret) {
		what = "cannot load the filter";
		ret = seccomp_load(ctx);
	}
	seccomp_release(ctx);
	if (ret) {
		if (ret > 0)	/* TSYNC: a thread that could not follow */
			ret = -EAGAIN;
		pr_err("seccomp: %s: %s (--no-seccomp runs without it)", what, strerror(-ret));
		return ret;
	}
	return 0;
}
