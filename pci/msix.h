/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_MSIX_H
#define TINYVMM_MSIX_H

/*
 * One PCI function's MSI-X: the capability's contents, the vector table
 * and the pending-bit array in a memory BAR, and the rules of delivery.
 *
 * A vector is delivered (through the sink) only while MSI-X is enabled,
 * the function is not masked and the vector's entry is not masked;
 * otherwise its pending bit is set, and clearing the last of those masks
 * delivers it then and clears the bit.  Each delivery is one edge: the
 * sink sends the vector's message (an irqfd write on KVM).
 *
 * The sink hears of a message only when it matters: a vector's address or
 * data written by the guest is handed to sink->route before the next
 * delivery of that vector (at unmask, or at the delivery itself when the
 * guest changed an unmasked entry), so a guest that rewrites a masked
 * entry dword by dword costs one route update, not three.
 *
 * Locking: the sink's calls are made under m->lock (so a route is in
 * place before the message it carries is sent, and a mask that the
 * guest wrote is seen by every later delivery) and must not call back.
 * m->lock may be taken under the PCI bus lock (control writes) and the
 * device's locks (notifies); the sink's route may take the VMM's own
 * leaf locks and system calls under it, nothing of the device's or the
 * bus's.  Nothing here knows about KVM or virtio.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/io_bus.h"

#define PCI_CAP_ID_MSIX		0x11
/* capability body, after the ID and next bytes: control, table, PBA */
#define MSIX_CAP_BODY_LEN	10
#define MSIX_CAP_CONTROL	2	/* offset of Message Control in the capability */
#define  MSIX_CONTROL_MASKALL	0x4000
#define  MSIX_CONTROL_ENABLE	0x8000

/* The BAR: table at 0, PBA at 2 KiB (room for MSIX_MAX_VECTORS entries). */
#define MSIX_MAX_VECTORS	128
#define MSIX_ENTRY_SIZE		16
#define MSIX_TABLE_OFF		0
#define MSIX_PBA_OFF		0x800
#define MSIX_BAR_SIZE		0x1000
#define  MSIX_ENTRY_CTRL_MASK	1u

struct msix_sink {
	/* Send vector's message (one edge). */
	void (*fire)(void *opaque, unsigned int vector);
	/* vector's message is now addr/data: 0 or -errno. */
	int (*route)(void *opaque, unsigned int vector, uint64_t addr, uint32_t data);
	void *opaque;
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix {
	pthread_mutex_t lock;
	unsigned int nr;			/* vectors in the table */
	bool enabled;				/* read without the lock too */
	bool masked;				/* the function mask */
	struct msix_entry table[MSIX_MAX_VECTORS];
	uint64_t pba[MSIX_MAX_VECTORS / 64];
	uint64_t dirty[MSIX_MAX_VECTORS / 64];	/* message changed since routed */
	struct msix_sink sink;
	bool route_warned;
	uint64_t fired, pended;			/* for --stats and the tests */
};

/* nr vectors (1..MSIX_MAX_VECTORS), all masked, MSI-X disabled. */
int msix_init(struct msix *m, unsigned int nr);
void msix_destroy(struct msix *m);

/*
 * The capability body for pci_dev_add_cap(), with table and PBA in BAR
 * bar, and which of its bits the guest may write (enable, function mask).
 */
void msix_cap_body(const struct msix *m, unsigned int bar, uint8_t body[MSIX_CAP_BODY_LEN],
		   uint8_t wmask[MSIX_CAP_BODY_LEN]);
void msix_set_sink(struct msix *m, const struct msix_sink *sink);

/*
 * The guest wrote Message Control: takes the enable and function-mask
 * bits.  Disabling drops the pending bits (the function is back on INTx,
 * where they mean nothing); true when there were any, so the caller can
 * announce them there.
 */
bool msix_control_write(struct msix *m, uint16_t control);
bool msix_enabled(const struct msix *m);

/*
 * Signal vector: 1 delivered, 0 held in its pending bit (masked),
 * -EINVAL past the table, -ENODEV while MSI-X is disabled.  Any thread.
 */
int msix_notify(struct msix *m, unsigned int vector);
/*
 * The same under msix_lock(), which is the lock the enable bit is written
 * under: a caller that falls back to INTx on -ENODEV before unlocking
 * announces a notify that races the guest's enable or disable one way or
 * the other, never neither.  Nothing under the lock may call into m.
 */
void msix_lock(struct msix *m);
void msix_unlock(struct msix *m);
int msix_notify_locked(struct msix *m, unsigned int vector);
/* Whether vector's pending bit is set (tests). */
bool msix_pending(struct msix *m, unsigned int vector);
/* Forget every pending message (a device reset: what they announced is gone). */
void msix_clear_pending(struct msix *m);

extern const struct io_ops msix_bar_ops;	/* opaque = struct msix * */

#endif
