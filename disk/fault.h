/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_FAULT_H
#define TINYVMM_DISK_FAULT_H

/*
 * For tests only (libtinyvmm_test.a): a filter put between a disk and
 * its engine, whatever that engine is.  With no rules it passes every
 * operation through unchanged; rules make chosen operations fail, a
 * trace shows the order in which operations reach the engine and come
 * back, and holding keeps completions back so that a test can prove its
 * caller waits for the engine.
 *
 * Offsets here are media offsets, as the engine sees them (the range=
 * window already added).
 */
#include <stdbool.h>
#include <stdint.h>

#include "disk/disk.h"

struct disk_fault_rule {
	uint32_t ops;		/* mask of 1u << DISK_OP_*; 0: any */
	/* media bytes the op must overlap; len 0: any (only then FLUSH matches) */
	uint64_t offset, len;
	unsigned int skip;	/* matching ops let through first */
	unsigned int count;	/* then this many fail; 0: all later ones */
	int error;		/* -errno reported */
	/*
	 * false: refused at submit, the engine never sees it (a done-now
	 * error); true: passed through, and its result replaced by error
	 * (it happened but is reported failed).
	 */
	bool after;
};

/*
 * Put a filter with these rules (copied) on top of d's engine; disk_close
 * destroys both.  Each rule counts every op it matches; the first rule
 * (in array order) whose skip is used up and count not yet decides.
 * disk_flush_sync() counts as a FLUSH.  Wrap with nothing in flight.
 * The engine's name becomes "fault(<inner name>)".  0 or -errno.
 */
int disk_fault_wrap(struct disk *d, const struct disk_fault_rule *rules, unsigned int n);

enum disk_fault_event {
	DISK_FAULT_SUBMIT,	/* passed to the engine underneath (result 0) */
	DISK_FAULT_DONE_NOW,	/* disk_submit() returned this result */
	DISK_FAULT_REAPED,	/* disk_reap() handed out this result */
	DISK_FAULT_FLUSH_SYNC,	/* disk_flush_sync() returned this result (cookie 0) */
};

/*
 * Each op gets SUBMIT if the engine saw it, then exactly one of DONE_NOW
 * or REAPED.  io is the op as the filter got it (media offsets, the
 * caller's cookie); it lives only for the call.  fn runs on the thread
 * that submits or reaps (any for FLUSH_SYNC) with the filter's lock held:
 * events come one at a time, and fn must not call disk_fault_*().
 * NULL fn: no trace.
 */
typedef void disk_fault_trace_fn(void *opaque, enum disk_fault_event ev,
				 const struct disk_io *io, uint64_t cookie, int result);
void disk_fault_set_trace(struct disk *d, disk_fault_trace_fn *fn, void *opaque);

/*
 * Keep back the answers to ops in ops_mask (1u << DISK_OP_*), from the
 * engine or from a rule, until disk_fault_release(): an answer the
 * engine gave at submit then becomes DISK_SUBMITTED to the caller, a
 * completion is held when disk_reap() collects it from the engine.
 * Release stops holding and makes what was held reapable (the notify fd
 * readable).  All from any thread.
 */
void disk_fault_hold(struct disk *d, uint32_t ops_mask);
/* Only ops that also overlap media bytes [offset, +len); len 0: any (FLUSH too). */
void disk_fault_hold_range(struct disk *d, uint32_t ops_mask, uint64_t offset, uint64_t len);
void disk_fault_release(struct disk *d);
/* How many answers are held now: a test waits for the engine with it. */
unsigned int disk_fault_held(struct disk *d);

#endif
