/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_KVM_IRQ_H
#define TINYVMM_KVM_IRQ_H

/*
 * KVM's GSI routing table, which tinyvmm owns once a device uses MSI:
 * KVM_SET_GSI_ROUTING replaces the whole table, so every update carries
 * the irqchip's default pins (PIC 0-15, IOAPIC 0-23, as KVM sets them up)
 * plus one MSI route per GSI given out here.  A GSI is allocated once per
 * MSI-X vector and keeps its irqfd; only its message changes.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm;

#define KVM_IRQ_FIRST_MSI_GSI	24	/* after the IOAPIC's pins */
#define KVM_IRQ_MAX_MSI		256

struct kvm_msi_route {
	uint64_t addr;
	uint32_t data;
	bool set;		/* a message was given: the route exists */
};

struct kvm_irq_routes {
	pthread_mutex_t lock;
	unsigned int nr;	/* GSIs given out, from KVM_IRQ_FIRST_MSI_GSI */
	struct kvm_msi_route msi[KVM_IRQ_MAX_MSI];
	uint64_t updates;	/* KVM_SET_GSI_ROUTING calls, for --stats */
};

/* Lives as long as the VM: nothing to tear down but the VM fd. */
void kvm_irq_routes_init(struct kvm_irq_routes *r);
/* A GSI for one MSI vector (no route until a message is set): gsi or -ENOSPC. */
int kvm_irq_msi_gsi(struct kvm_irq_routes *r);
/* gsi now sends addr/data: 0 or -errno (one error line). */
int kvm_irq_msi_route(struct kvm *kvm, struct kvm_irq_routes *r, unsigned int gsi,
		      uint64_t addr, uint32_t data);

#endif
