// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/util.h"
#include "vmm/kvm.h"
#include "vmm/kvm_irq.h"

#define PIC_PINS	16
#define IOAPIC_PINS	24

void kvm_irq_routes_init(struct kvm_irq_routes *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

int kvm_irq_msi_gsi(struct kvm_irq_routes *r)
{
	int gsi = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	if (r->nr < KVM_IRQ_MAX_MSI)
		gsi = KVM_IRQ_FIRST_MSI_GSI + r->nr++;
	pthread_mutex_unlock(&r->lock);
	return gsi;
}

static void irqchip_entry(struct kvm_irq_routing_entry *e, unsigned int gsi, unsigned int chip,
			  unsigned int pin)
{
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* r->lock held: the default pins and every MSI route, as one table. */
static unsigned int routes_fill(const struct kvm_irq_routes *r, struct kvm_irq_routing_entry *e)
{
	unsigned int i, n = 0;

	/* KVM's own default: GSIs 0-15 on both PICs and the IOAPIC, 16-23 on the IOAPIC. */
	for (i = 0; i < PIC_PINS; i++)
		irqchip_entry(&e[n++], i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
			      i % 8);
	for (i = 0; i < IOAPIC_PINS; i++)
		irqchip_entry(&e[n++], i, KVM_IRQCHIP_IOAPIC, i);
	for (i = 0; i < r->nr; i++) {
		if (!r->msi[i].set)
			continue;
		e[n].gsi = KVM_IRQ_FIRST_MSI_GSI + i;
		e[n].type = KVM_IRQ_ROUTING_MSI;
		e[n].u.msi.address_lo = (uint32_t)r->msi[i].addr;
		e[n].u.msi.address_hi = r->msi[i].addr >> 32;
		e[n].u.msi.data = r->msi[i].data;
		n++;
	}
	return n;
}

int kvm_irq_msi_route(struct kvm *kvm, struct kvm_irq_routes *r, unsigned int gsi,
		      uint64_t addr, uint32_t data)
{
	unsigned int i = gsi - KVM_IRQ_FIRST_MSI_GSI;
	struct kvm_irq_routing *table;
	struct kvm_msi_route old;
	int ret = 0;

	table = calloc(1, sizeof(*table) + (PIC_PINS + IOAPIC_PINS + KVM_IRQ_MAX_MSI) *
					   sizeof(table->entries[0]));
	if (!table)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	if (gsi < KVM_IRQ_FIRST_MSI_GSI || i >= r->nr) {
		ret = -EINVAL;
		goto out;
	}
	old = r->msi[i];
	r->msi[i] = (struct kvm_msi_route){ .addr = addr, .data = data, .set = true };
	table->nr = routes_fill(r, table->entries);
	r->updates++;
	/* Under the lock: two vCPUs' updates must not reach KVM out of order. */
	if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0) {
		ret = -errno;
		/* KVM kept the old table: so do we, or every later update would fail too. */
		r->msi[i] = old;
		pr_err("KVM_SET_GSI_ROUTING (GSI %u -> MSI %#llx/%#x): %s", gsi,
		       (unsigned long long)addr, data, strerror(errno));
	}
out:
	pthread_mutex_unlock(&r->lock);
	free(table);
	return ret;
}
