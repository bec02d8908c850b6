// SPDX-License-Identifier: MIT
/*
 * What both boot paths share: the e820-style memory map, where the initrd
 * goes, the boot GDT and the identity page tables for the 64-bit entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define LEGACY_HOLE_END		0x000a0000ULL	/* VGA + option ROMs follow */
#define PAGE_SIZE_4K		0x1000ULL
#define PAGE_SIZE_2M		0x200000ULL

#define PTE_PRESENT		(1ULL << 0)
#define PTE_RW			(1ULL << 1)
#define PTE_PS			(1ULL << 7)

static int map_add(struct mem_map_entry *out, int max, int *n,
		   uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0)
		return 0;
	if (*n >= max) {
		pr_err("guest memory map needs more than %d entries", max);
		return -ENOSPC;
	}
	out[*n].addr = addr;
	out[*n].size = size;
	out[*n].type = type;
	(*n)++;
	return 0;
}

int mem_map_build(const struct guest_mem *gm, struct mem_map_entry *out, int max)
{
	uint64_t low_end = gmem_low_end(gm);
	int n = 0, ret;

	/*
	 * A PC's low memory: conventional RAM up to the EBDA, then the EBDA
	 * and the BIOS area (where the MP table is) reserved so that Linux
	 * leaves them alone.  0xA0000-0xF0000 stays a hole, as on hardware.
	 */
	ret = map_add(out, max, &n, 0, MIN(low_end, EBDA_START), E820_TYPE_RAM);
	if (!ret)
		ret = map_add(out, max, &n, EBDA_START, LEGACY_HOLE_END - EBDA_START,
			      E820_TYPE_RESERVED);
	if (!ret)
		ret = map_add(out, max, &n, BIOS_AREA_START,
			      BIOS_AREA_END - BIOS_AREA_START, E820_TYPE_RESERVED);
	if (!ret && low_end > BIOS_AREA_END)
		ret = map_add(out, max, &n, BIOS_AREA_END, low_end - BIOS_AREA_END,
			      E820_TYPE_RAM);
	if (!ret && gm->nr_regions > 1)
		ret = map_add(out, max, &n, gm->region[1].gpa, gm->region[1].size,
			      E820_TYPE_RAM);
	return ret ? ret : n;
}

uint64_t initrd_place(const struct guest_mem *gm, uint64_t size,
		      uint64_t kernel_end, uint64_t max_addr)
{
	uint64_t lo = ALIGN_UP(kernel_end, PAGE_SIZE_4K);
	uint64_t limit = gmem_low_end(gm);
	uint64_t addr;

	if (lo < kernel_end)	/* wrapped */
		return 0;
	/* Below 1 MiB is boot data and legacy areas, never the initrd. */
	lo = MAX(lo, BIOS_AREA_END);
	/* max_addr is the last byte the initrd may use, as initrd_addr_max. */
	if (max_addr < limit)
		limit = max_addr + 1;
	if (size == 0 || size > limit)
		return 0;
	addr = ALIGN_DOWN(limit - size, PAGE_SIZE_4K);
	if (addr < lo || !gmem_ptr(gm, addr, size))
		return 0;
	return addr;
}

int boot_write_gdt(struct guest_mem *gm)
{
	/*
	 * Selectors as the boot protocol wants them: 0x10 __BOOT_CS and
	 * 0x18 __BOOT_DS.  0x08 is a 32-bit code segment for the PVH entry,
	 * which starts in protected mode with paging off.
	 */
	static const uint64_t gdt[4] = {
		0,
		0x00CF9B000000FFFFULL,	/* 0x08: flat 32-bit code */
		0x00AF9B000000FFFFULL,	/* 0x10: 64-bit code */
		0x00CF93000000FFFFULL,	/* 0x18: flat data */
	};
	int ret = gmem_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt));

	if (ret)
		pr_err("guest RAM is too small for the boot GDT at 0x%llx", BOOT_GDT_ADDR);
	return ret;
}

int boot_write_page_tables(struct guest_mem *gm)
{
	uint64_t *pml4 = gmem_ptr(gm, BOOT_PML4_ADDR, PAGE_SIZE_4K);
	uint64_t *pdpt = gmem_ptr(gm, BOOT_PDPT_ADDR, PAGE_SIZE_4K);
	uint64_t *pd = gmem_ptr(gm, BOOT_PD_ADDR, 4 * PAGE_SIZE_4K);
	unsigned int i;

	if (!pml4 || !pdpt || !pd) {
		pr_err("guest RAM is too small for the boot page tables at 0x%llx",
		       BOOT_PML4_ADDR);
		return -EFAULT;
	}
	/* Guest RAM may be reused (reboot): clear the entries we do not set. */
	memset(pml4, 0, PAGE_SIZE_4K);
	memset(pdpt, 0, PAGE_SIZE_4K);
	pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_RW;
	for (i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * PAGE_SIZE_4K) | PTE_PRESENT | PTE_RW;
	/* 2048 2 MiB pages: the low 4 GiB, identity mapped, PCI hole included. */
	for (i = 0; i < 4 * 512; i++)
		pd[i] = (uint64_t)i * PAGE_SIZE_2M | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

int initrd_load(struct guest_mem *gm, const char *path, uint64_t kernel_end,
		uint64_t max_addr, uint64_t *addr, uint64_t *size)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("cannot open initrd '%s': %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (S_ISDIR(st.st_mode))
		ret = -EISDIR;
	if (ret) {
		pr_err("cannot open initrd '%s': %s", path, strerror(-ret));
		goto out;
	}
	if (st.st_size == 0) {
		pr_err("initrd '%s' is empty", path);
		ret = -EINVAL;
		goto out;
	}
	*addr = initrd_place(gm, st.st_size, kernel_end, max_addr);
	if (!*addr) {
		pr_err("initrd '%s' (%llu MiB) does not fit in guest RAM above the kernel "
		       "and below 0x%llx (-m)", path,
		       (unsigned long long)((st.st_size + SZ_1M - 1) / SZ_1M),
		       (unsigned long long)max_addr);
		ret = -ENOMEM;
		goto out;
	}
	n = pread_full(fd, gmem_ptr(gm, *addr, st.st_size), st.st_size, 0);
	if (n != st.st_size) {
		ret = n < 0 ? (int)n : -EIO;
		pr_err("cannot read initrd '%s': %s", path,
		       n < 0 ? strerror(-n) : "file changed size");
		goto out;
	}
	*size = st.st_size;
out:
	close(fd);
	return ret;
}
