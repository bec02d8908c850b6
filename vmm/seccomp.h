/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_SECCOMP_H
#define TINYVMM_SECCOMP_H

/*
 * tinyvmm's system call filter (libseccomp).  Installed once everything
 * is open and created (vm_create() has returned, device threads already
 * running) and before the vCPUs start; it covers every thread of the
 * process (SECCOMP_FILTER_FLAG_TSYNC) and every thread started later.
 *
 * A forbidden call never runs: the calling thread gets SIGSYS, whose
 * handler writes one line naming the call, runs on_violation (if set:
 * e.g. restore the terminal) and ends the whole process by SIGSYS (exit
 * status 128 + 31 = 159 in a shell).
 */

/* Allow read-only open()s (--stats reads /proc/self/status at the end). */
#define VMM_SECCOMP_RO_OPEN	(1u << 0)
/*
 * A disk on a socket (an NBD export): moving bytes on it, and for its
 * reconnects socket() of that address family (stream sockets only) and
 * connect().
 */
#define VMM_SECCOMP_NET_UNIX	(1u << 1)
#define VMM_SECCOMP_NET_INET	(1u << 2)
#define VMM_SECCOMP_NET_INET6	(1u << 3)

/* The VMM_SECCOMP_NET_* flag for an address family (AF_*); 0 for others. */
unsigned int vmm_seccomp_socket_flag(int family);

/*
 * Install the filter for the whole process.  Prints nothing on success;
 * one error line and -errno on failure.  on_violation must be
 * async-signal-safe and call only allowed system calls.
 */
int vmm_seccomp_install(unsigned int flags, void (*on_violation)(void));

/* Whether this is a sanitizer build, whose filter allows more (see seccomp.c). */
int vmm_seccomp_sanitizer_build(void);

#endif
