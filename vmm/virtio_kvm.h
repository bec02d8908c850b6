/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VIRTIO_KVM_H
#define TINYVMM_VIRTIO_KVM_H

/*
 * How a virtio device's notifications cross KVM without exits:
 *
 *   guest OUT to QUEUE_NOTIFY --KVM_IOEVENTFD--> kick eventfd --> device
 *   device sets ISR --> irq eventfd --KVM_IRQFD--> IOAPIC pin --> guest
 *
 * Legacy INTx is level-triggered and acknowledged by reading ISR, so the
 * irqfd is a resampling one: KVM keeps the pin asserted until the guest's
 * EOI, then lowers it and signals the resample eventfd.  The transport
 * asserts once per interrupt and waits for that EOI before asserting
 * again (virtio_pci_irq_eoi(), from the main loop or, if a completion
 * comes first, from the completion itself), so an injection that lands
 * late is not an interrupt with nothing in ISR.  A PVM host signals the
 * resample fd when it delivers the interrupt, before the handler reads
 * ISR (early_eoi): there bits left unread at that EOI get another
 * interrupt only if they are still unread VIRTIO_KVM_OWED_MS later
 * (virtio_kvm_irq_timeout).  KVM keeps one resampler per GSI, so each
 * device must have a GSI of its own (pci/pci.c assigns them so).  Without
 * KVM_CAP_IRQFD_RESAMPLE, KVM_IRQ_LINE raise/lower is used instead
 * (raised when ISR gains bits, lowered by the ISR read).
 *
 * MSI-X needs none of that: each vector has a GSI with an MSI route and
 * a plain irqfd, a message is an edge (one eventfd write, no EOI to wait
 * for), and the guest acknowledges nothing in BAR0.  The transport
 * decides when a vector may fire (mask, pending bit); this side only
 * sends and keeps KVM's route in step with the vector's message.
 */
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtio_pci.h"
#include "vmm/kvm.h"

struct virtio_kvm_irq {
	struct kvm *kvm;
	struct virtio_pci *vp;
	unsigned int gsi;
	bool use_irqfd;
	int irq_efd;
	int resample_efd;
	uint64_t asserts;		/* interrupts raised */
	uint64_t resamples, reasserts;	/* EOIs seen; asserts made at one */
	uint64_t owed_since_ns;		/* main loop: when bits were left at an early EOI */
};

/*
 * How long a handler gets to read ISR after an early EOI before the bits
 * it left are announced again: far longer than any handler takes, even
 * in an instruction emulator, and short enough to be a hiccup only.
 */
#define VIRTIO_KVM_OWED_MS	100

/*
 * Wire vp's INTx to its GSI; vp->pci.gsi must be assigned.  early_eoi:
 * the host reports EOIs at delivery (PVM).
 */
int virtio_kvm_irq_init(struct virtio_kvm_irq *vi, struct kvm *kvm, struct virtio_pci *vp,
			bool early_eoi);
void virtio_kvm_irq_exit(struct virtio_kvm_irq *vi);
/* The fd the main loop polls (-1 when not resampling) and its handler. */
int virtio_kvm_irq_fd(const struct virtio_kvm_irq *vi);
void virtio_kvm_irq_resample(struct virtio_kvm_irq *vi);
/*
 * The main loop's timer for early EOIs: ms until it must call again
 * (-1: no need); re-announces bits a handler left unread too long.
 */
int virtio_kvm_irq_timeout(struct virtio_kvm_irq *vi, uint64_t now_ns);

struct virtio_kvm_msix {
	struct kvm *kvm;
	unsigned int nr;
	int gsi[MSIX_MAX_VECTORS];
	int efd[MSIX_MAX_VECTORS];
	uint64_t sent;			/* messages sent, for --stats */
};

/* An irqfd on its own GSI for each of vp's MSI-X vectors. */
int virtio_kvm_msix_init(struct virtio_kvm_msix *vm, struct kvm *kvm, struct virtio_pci *vp);
void virtio_kvm_msix_exit(struct virtio_kvm_msix *vm);

/* KVM_IOEVENTFD on a port, 2 bytes wide, datamatch = queue index. */
extern const struct virtio_notify virtio_kvm_notify_template;	/* .opaque = struct kvm * */

#endif
