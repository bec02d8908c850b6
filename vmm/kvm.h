/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_KVM_H
#define TINYVMM_KVM_H

/* The KVM system and VM file descriptors: capabilities, memory, irqchip. */
#include <linux/kvm.h>
#include <stdint.h>

#include "lib/guest_mem.h"
#include "vmm/kvm_irq.h"

#define KVM_DEVICE_DEFAULT "/dev/kvm"

struct kvm {
	int sys_fd;
	int vm_fd;
	int vcpu_mmap_size;
	int max_vcpus;
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	struct kvm_irq_routes routes;	/* MSI routes beside the irqchip's pins */
};

/*
 * Open the KVM device (path from $TINYVMM_KVM_DEVICE, else /dev/kvm),
 * check the API version and every capability tinyvmm relies on, create
 * the VM with its in-kernel IRQ chip and PIT.  One error line on failure.
 */
int kvm_init(struct kvm *kvm, unsigned int nr_cpus);
/* $TINYVMM_KVM_DEVICE, else /dev/kvm. */
const char *kvm_device_path(void);
void kvm_exit(struct kvm *kvm);

/* Map guest RAM into the VM, one memslot per region. */
int kvm_map_memory(struct kvm *kvm, const struct guest_mem *gm);

/* Set an IRQ line of the in-kernel PIC/IOAPIC to level. */
int kvm_irq_line(struct kvm *kvm, unsigned int gsi, int level);

#endif
