/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_EFD_H
#define TINYVMM_EFD_H

/*
 * An eventfd as a doorbell (efd_signal, efd_drain), or as a level
 * (struct efd_level): readable exactly while a condition holds, for a
 * poller that must neither spin on a stale signal nor miss a live one.
 * Small enough to inline: a queue thread rings or drains one per wake.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A non-blocking, close-on-exec eventfd; the fd or -errno. */
static inline int efd_open(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

/* Ring it: 0, or -errno (-EAGAIN: the counter is saturated, still rung). */
static inline int efd_signal(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

/* Take the count, if any: true when it had been rung. */
static inline bool efd_drain(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

struct efd_level {
	int fd;
	bool set;		/* rung and not drained since */
};

/*
 * Readable iff ready.  Called in the same hold of the lock that guards
 * the condition as every change to it: updated after unlocking, a
 * signal could come late, for a condition a drain has already seen gone.
 */
static inline void efd_level_update(struct efd_level *l, bool ready)
{
	if (ready && !l->set) {
		efd_signal(l->fd);	/* fails only saturated: readable */
		l->set = true;
	} else if (!ready && l->set) {
		efd_drain(l->fd);
		l->set = false;
	}
}

#endif
