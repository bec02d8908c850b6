/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_GUEST_MEM_H
#define TINYVMM_GUEST_MEM_H

/*
 * Guest physical memory as the rest of tinyvmm sees it.
 *
 * This is the only place that turns a guest physical address into a host
 * pointer.  Every accessor checks that the whole range [gpa, gpa + len) lies
 * inside one RAM region, without integer overflow, so a guest-controlled
 * address can never make tinyvmm touch host memory outside guest RAM.
 * Nothing here knows about KVM: unit tests and benchmarks build a
 * guest_mem over plain anonymous memory.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 2

/* The 32-bit PCI hole: RAM never overlaps [3 GiB, 4 GiB). */
#define GMEM_32BIT_GAP_START	0xC0000000ULL
#define GMEM_4G			0x100000000ULL

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct gmem_region region[GMEM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t ram_size;	/* total bytes of RAM, both regions */
};

/*
 * Lay out ram_size bytes below the PCI hole and, for what does not fit,
 * from 4 GiB up; back them with private anonymous memory (MAP_NORESERVE,
 * so untouched guest RAM costs nothing).  Returns 0 or -errno.
 */
int gmem_init(struct guest_mem *gm, uint64_t ram_size);
void gmem_free(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) or NULL if any byte is not guest RAM. */
void *gmem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers; return 0 or -EFAULT when the range is not wholly RAM. */
int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len);
int gmem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len);

/*
 * Zero [gpa, gpa+len) without touching the pages in between: whole pages
 * are dropped (MADV_DONTNEED: private anonymous memory reads back as
 * zero), so zeroing a kernel's multi-MiB bss costs no page faults.
 * 0 or -EFAULT.
 */
int gmem_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* End of RAM below 4 GiB (exclusive). */
uint64_t gmem_low_end(const struct guest_mem *gm);

#endif
