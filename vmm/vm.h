/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VM_H
#define TINYVMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/guest_mem.h"
#include "lib/io_bus.h"
#include "lib/irq.h"
#include "pci/pci.h"
#include "vmm/boot.h"
#include "vmm/host.h"
#include "vmm/kvm.h"
#include "vmm/options.h"
#include "vmm/virtio_kvm.h"

struct vcpu;
struct uart;
struct cmos_rtc;
struct i8042;
struct debug_exit;
struct blk_dev;

/* A virtio-blk disk: the device model and its KVM wiring. */
struct vm_disk {
	unsigned int slot;
	struct blk_dev *blk;
	struct virtio_kvm_irq irq;
	struct virtio_kvm_msix msix;
	bool irq_wired;
};

#define VM_EXIT_REASONS 64	/* KVM_EXIT_* fit below this */

struct vm {
	const struct options *opt;
	enum host_kind host;
	bool quirks;			/* PVM workarounds active */
	struct kvm kvm;
	struct guest_mem mem;
	struct io_bus pio;
	struct io_bus mmio;		/* PCI memory BARs */
	struct boot_entry entry;

	struct vcpu *vcpu;
	unsigned int nr_vcpus;

	/* Devices, created in vm_create() in this order. */
	struct uart *uart;
	struct cmos_rtc *rtc;
	struct i8042 *i8042;
	struct debug_exit *debug_exit;
	struct irq_line uart_irq;
	struct vm_stop stop;
	struct pci_bus pci;
	bool pci_ready;
	struct vm_disk disk[PCI_MAX_SLOTS];
	unsigned int nr_disks;
	struct virtio_notify notify;

	/* Stop state: the first request wins, the rest are ignored. */
	pthread_mutex_t stop_lock;
	bool stopping;
	int exit_status;
	char stop_why[160];
	int stop_efd;			/* main loop wakes on it */

	/* Start-up cost, for --stats: CLOCK_REALTIME ns. */
	uint64_t t_main_ns;		/* main() entered */
	uint64_t t_first_run_ns;	/* boot vCPU about to enter KVM_RUN */
	int status_fd;			/* /proc/self/status, opened before seccomp */
};

/*
 * Build the whole machine in one explicit order: guest RAM, kernel,
 * KVM VM, devices, vCPUs.  Errors have been printed; the return value is
 * the exit status to end with (0 on success).
 */
int vm_create(struct vm *vm, const struct options *opt, uint64_t t_main_ns);
int vm_run(struct vm *vm);	/* blocks; returns the exit status */
/* Tears down in reverse; non-zero when a disk may miss completed writes. */
int vm_destroy(struct vm *vm);
/* Call once before vm_create(): see vm.c. */
void vm_block_signals(void);

/* Any thread: stop every vCPU and make vm_run() return status. */
void vm_request_stop(struct vm *vm, int status, const char *why);
bool vm_stopping(struct vm *vm);

void vm_print_stats(struct vm *vm);
/* VMM_SECCOMP_* for what the devices need at run time (an NBD disk's socket). */
unsigned int vm_seccomp_flags(const struct vm *vm);
uint64_t vm_now_ns(void);

#endif
