// SPDX-License-Identifier: MIT
/*
 * make kick-path: linked into a blkbench built with -finstrument-functions.
 * Records every function entry (function, call site, thread) in memory and
 * writes them to $KICKPATH_OUT at exit, for bench/kickpath/report.py.
 * Nothing here is instrumented itself.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOINST __attribute__((no_instrument_function))
#define KP_MAX_EVENTS (1UL << 24)

struct kp_event {
	uint64_t fn, site, tid;
};

static struct kp_event *kp_events;
static atomic_size_t kp_count;
static __thread uint64_t kp_tid;

NOINST void __cyg_profile_func_enter(void *fn, void *site);
NOINST void __cyg_profile_func_exit(void *fn, void *site);

void __cyg_profile_func_enter(void *fn, void *site)
{
	size_t i;

	if (!kp_events)
		return;
	if (!kp_tid)
		kp_tid = syscall(SYS_gettid);
	i = atomic_fetch_add_explicit(&kp_count, 1, memory_order_relaxed);
	if (i < KP_MAX_EVENTS)
		kp_events[i] = (struct kp_event){ (uintptr_t)fn, (uintptr_t)site, kp_tid };
}

void __cyg_profile_func_exit(void *fn, void *site)
{
	(void)fn;
	(void)site;
}

NOINST __attribute__((constructor)) static void kp_init(void)
{
	if (getenv("KICKPATH_OUT"))
		kp_events = calloc(KP_MAX_EVENTS, sizeof(*kp_events));
}

NOINST __attribute__((destructor)) static void kp_dump(void)
{
	const char *path = getenv("KICKPATH_OUT");
	size_t n = atomic_load(&kp_count);
	FILE *f;

	if (!path || !kp_events)
		return;
	if (n > KP_MAX_EVENTS) {
		fprintf(stderr, "kick-path: %zu events, only the first %lu kept\n", n, KP_MAX_EVENTS);
		n = KP_MAX_EVENTS;
	}
	f = fopen(path, "w");
	if (!f || fwrite(kp_events, sizeof(*kp_events), n, f) != n || fclose(f)) {
		perror(path);
		_exit(1);	/* exit() again from a destructor is undefined */
	}
}
