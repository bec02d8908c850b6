/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_BOOT_H
#define TINYVMM_BOOT_H

/*
 * Kernel loading.  The loaders only write guest memory (through guest_mem)
 * and describe the CPU state the kernel must start in; vcpu.c turns that
 * description into KVM register state.  Nothing here uses KVM, so every
 * loader is unit-tested over plain memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "lib/guest_mem.h"
#include "pci/pci_irq.h"

enum kernel_format {
	KERNEL_FORMAT_UNKNOWN = 0,
	KERNEL_FORMAT_ELF,	/* vmlinux: entered through its PVH note */
	KERNEL_FORMAT_BZIMAGE,	/* x86 boot protocol, 64-bit entry */
};

enum boot_cpu_mode {
	/* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info. */
	BOOT_MODE_PVH32,
	/*
	 * Boot protocol 64-bit entry: long mode with the identity page
	 * tables at BOOT_PML4_ADDR, CS = BOOT_CS_SELECTOR,
	 * RSI = boot_params.
	 */
	BOOT_MODE_LONG64,
};

struct boot_entry {
	enum boot_cpu_mode mode;
	uint64_t rip;
	uint64_t rbx;		/* PVH: start_info address */
	uint64_t rsi;		/* LONG64: boot_params address */
	uint64_t rsp;
	uint64_t cr3;		/* LONG64 only */
	uint64_t gdt_base;
	uint16_t gdt_limit;
};

struct boot_config {
	const char *kernel_path;
	const char *initrd_path;	/* NULL: none */
	const char *cmdline;		/* final cmdline, quirks included */
};

/* Look at a kernel file's first bytes (at least 0x210 when available). */
enum kernel_format kernel_detect(const uint8_t *buf, size_t len);

/*
 * Load the kernel (and initrd) into guest memory and fill *entry.
 * Errors are printed as one line naming the file and returned as -errno.
 */
int kernel_load(struct guest_mem *gm, const struct boot_config *cfg,
		struct boot_entry *entry);

/* Format-specific loaders, used by kernel_load() and by the unit tests. */
int elf_load_pvh(struct guest_mem *gm, int fd, const char *path,
		 const struct boot_config *cfg, struct boot_entry *entry);
int bzimage_load(struct guest_mem *gm, int fd, const char *path,
		 const struct boot_config *cfg, struct boot_entry *entry);

/*
 * The memory map both boot paths hand to Linux.  Types are the e820 ones
 * (1 RAM, 2 reserved); entries are sorted and do not overlap.  Returns the
 * number of entries written, or -ENOSPC when max is too small.
 */
#define E820_TYPE_RAM		1
#define E820_TYPE_RESERVED	2

struct mem_map_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

int mem_map_build(const struct guest_mem *gm, struct mem_map_entry *out, int max);

/*
 * Place the initrd: page aligned, as high as possible below both the end
 * of low RAM and max_addr (the kernel's initrd_addr_max), above
 * kernel_end.  Returns the address or 0 when it does not fit.
 */
uint64_t initrd_place(const struct guest_mem *gm, uint64_t size,
		      uint64_t kernel_end, uint64_t max_addr);

/*
 * Read the initrd at path into guest RAM where initrd_place() puts it
 * (max_addr: the last byte it may use).  Fills *addr and *size.  One
 * error line naming the file; -errno.
 */
int initrd_load(struct guest_mem *gm, const char *path, uint64_t kernel_end,
		uint64_t max_addr, uint64_t *addr, uint64_t *size);

/* Write the boot GDT and the 4 GiB identity page tables (LONG64 entry). */
int boot_write_gdt(struct guest_mem *gm);
int boot_write_page_tables(struct guest_mem *gm);

/*
 * MP table (Intel MP spec 1.4) in the BIOS area: one processor entry per
 * vCPU, the IOAPIC, ISA IRQs 0-15 routed to the IOAPIC pins of the same
 * number, and one entry per PCI interrupt given in pci_irqs.  Linux uses it
 * to find the IOAPIC and the APs and to route PCI INTx without ACPI.
 */
int mptable_write(struct guest_mem *gm, unsigned int nr_cpus,
		  const struct pci_irq *pci_irqs, unsigned int nr_pci_irqs);

#endif
