/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VCPU_H
#define TINYVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

#include "vmm/vm.h"

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint64_t exits[VM_EXIT_REASONS];
	uint64_t quirks_applied;
};

int vcpu_create(struct vm *vm, struct vcpu *v, unsigned int id);
void vcpu_destroy(struct vcpu *v);
/* Put the boot vCPU into the state the boot protocol asks for. */
int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *e);
int vcpu_start(struct vcpu *v);
/* Make a vCPU leave KVM_RUN soon (any thread). */
void vcpu_kick(struct vcpu *v);
const char *vcpu_exit_name(unsigned int reason);

#endif
