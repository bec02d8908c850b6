/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_PVH_H
#define TINYVMM_PVH_H

/*
 * The PVH boot ABI (Xen's public/arch-x86/hvm/start_info.h), which Linux
 * also accepts outside Xen: a vmlinux built with CONFIG_PVH=y carries an
 * ELF note naming a 32-bit entry point that expects EBX to point at
 * struct hvm_start_info.  The layouts are fixed by that header: all fields
 * are naturally aligned there, so "packed" only guards against surprises.
 */
#include <stdint.h>

#define XEN_HVM_START_MAGIC_VALUE	0x336ec578
#define XEN_HVM_START_VERSION		1	/* memmap fields present */

/* ELF note owner "Xen", type PHYS32_ENTRY: 32-bit physical entry point. */
#define XEN_ELFNOTE_OWNER		"Xen"
#define XEN_ELFNOTE_PHYS32_ENTRY	18

#define XEN_HVM_MEMMAP_TYPE_RAM		1
#define XEN_HVM_MEMMAP_TYPE_RESERVED	2

struct hvm_start_info {
	uint32_t magic;			/* XEN_HVM_START_MAGIC_VALUE */
	uint32_t version;
	uint32_t flags;			/* SIF_xxx, 0 here */
	uint32_t nr_modules;
	uint64_t modlist_paddr;		/* struct hvm_modlist_entry[] */
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;		/* 0: no ACPI, Linux falls back to MP */
	/* Version 1 and later. */
	uint64_t memmap_paddr;		/* struct hvm_memmap_table_entry[] */
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;			/* XEN_HVM_MEMMAP_TYPE_*, = e820 type */
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry ABI");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry ABI");

#endif
