/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_LAYOUT_H
#define TINYVMM_LAYOUT_H

/*
 * Where tinyvmm puts things in guest physical memory before the kernel runs.
 * Everything below 1 MiB sits in RAM that the e820 map still reports as
 * usable, except the BIOS-area range that holds the MP table, which Linux
 * only looks for in [0xF0000, 0x100000).
 */
#define BOOT_GDT_ADDR		0x00000500ULL	/* 4 entries */
#define BOOT_PVH_INFO_ADDR	0x00006000ULL	/* hvm_start_info + modlist */
#define BOOT_PVH_MEMMAP_ADDR	0x00006400ULL	/* hvm_memmap_table_entry[] */
#define BOOT_ZERO_PAGE_ADDR	0x00007000ULL	/* struct boot_params */
#define BOOT_STACK_TOP		0x00008ff0ULL
#define BOOT_PML4_ADDR		0x00009000ULL
#define BOOT_PDPT_ADDR		0x0000a000ULL
#define BOOT_PD_ADDR		0x0000b000ULL	/* 4 pages: identity map of 4 GiB */
#define BOOT_CMDLINE_ADDR	0x00020000ULL
#define BOOT_CMDLINE_MAX	4096
#define EBDA_START		0x0009fc00ULL
#define BIOS_AREA_START		0x000f0000ULL	/* MP floating pointer + table */
#define BIOS_AREA_END		0x00100000ULL
#define KERNEL_LOAD_ADDR	0x00100000ULL	/* bzImage protected-mode part */

/* Inside the 32-bit PCI hole, never RAM. */
#define KVM_TSS_ADDR		0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR	0xfffbc000ULL
#define IOAPIC_ADDR		0xfec00000ULL
#define LAPIC_ADDR		0xfee00000ULL

/*
 * Boot GDT: 0x08 flat 32-bit code (PVH entry), and the selectors the x86
 * boot protocol expects (__BOOT_CS, __BOOT_DS).
 */
#define BOOT_CS32_SELECTOR	0x08
#define BOOT_CS_SELECTOR	0x10
#define BOOT_DS_SELECTOR	0x18
#define BOOT_GDT_LIMIT		(4 * 8 - 1)

#endif
