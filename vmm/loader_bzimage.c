// SPDX-License-Identifier: MIT
/*
 * bzImage through the x86 boot protocol's 64-bit entry (2.12+): the
 * protected-mode part goes to 1 MiB, boot_params ("zero page") carries the
 * setup header, command line, initrd and e820 map, and the CPU starts in
 * long mode at load address + 0x200 with RSI pointing at boot_params.
 * The real-mode setup code is never run, so nothing of it is loaded.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define BZ_HDR_OFF		0x1f1	/* struct setup_header in file and zero page */
#define BZ_JUMP_OFF		0x201	/* jump offset byte: end of the header */
#define BZ_HDR_MAX_END		(BZ_HDR_OFF + sizeof(struct setup_header))
#define BZ_PROBE_LEN		0x400
#define BZ_MIN_VERSION		0x020c	/* 2.12: xloadflags, 64-bit entry */
#define BZ_ENTRY64_OFF		0x200	/* startup_64 from the load address */
#define BZ_LOADER_UNDEFINED	0xff
#define BZ_HEAP_END		0xfe00
#define BZ_VID_MODE_NORMAL	0xffff

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");

static uint64_t mib_up(uint64_t bytes)
{
	return bytes / SZ_1M + (bytes % SZ_1M != 0);
}

/* Read the setup header into a clean boot_params, as boot.rst asks. */
static int bz_read_header(int fd, const char *path, struct boot_params *bp)
{
	uint8_t buf[BZ_PROBE_LEN];
	size_t end;
	ssize_t n;

	n = pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		pr_err("cannot read kernel '%s': %s", path, strerror(-n));
		return n;
	}
	if (kernel_detect(buf, n) != KERNEL_FORMAT_BZIMAGE) {
		pr_err("'%s' is not a Linux kernel (neither an ELF vmlinux nor a bzImage)",
		       path);
		return -ENOEXEC;
	}
	end = MIN(BZ_JUMP_OFF + 1 + (size_t)buf[BZ_JUMP_OFF], BZ_HDR_MAX_END);
	if (end > (size_t)n) {
		pr_err("bzImage '%s' is truncated inside its setup header", path);
		return -ENOEXEC;
	}
	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + BZ_HDR_OFF, buf + BZ_HDR_OFF, end - BZ_HDR_OFF);
	return 0;
}

/*
 * End of what the kernel occupies before it has looked at the e820 map.
 * The decompressor works at the load address rounded up to
 * kernel_alignment, but never below pref_address (LOAD_PHYSICAL_ADDR):
 * a kernel loaded at 1 MiB really runs from 16 MiB or so, init_size on.
 */
static uint64_t bz_kernel_end(const struct setup_header *hdr, uint64_t payload)
{
	uint64_t start = KERNEL_LOAD_ADDR;

	if (hdr->relocatable_kernel && IS_POW2(hdr->kernel_alignment))
		start = ALIGN_UP(start, (uint64_t)hdr->kernel_alignment);
	start = MAX(start, hdr->pref_address);
	if (start > UINT64_MAX - hdr->init_size)	/* nonsense header */
		return UINT64_MAX;
	return MAX(KERNEL_LOAD_ADDR + payload, start + hdr->init_size);
}

static int bz_write_cmdline(struct guest_mem *gm, const char *path,
			    struct setup_header *hdr, const char *cmdline)
{
	size_t len = strlen(cmdline);

	/* cmdline_size excludes the NUL (boot.rst). */
	if (len > hdr->cmdline_size || len >= BOOT_CMDLINE_MAX) {
		pr_err("kernel command line is %zu bytes; kernel '%s' takes at most %u (--cmdline)",
		       len, path, MIN(hdr->cmdline_size, (uint32_t)BOOT_CMDLINE_MAX - 1));
		return -E2BIG;
	}
	hdr->cmd_line_ptr = BOOT_CMDLINE_ADDR;
	return gmem_write(gm, BOOT_CMDLINE_ADDR, cmdline, len + 1);
}

static int bz_load_initrd(struct guest_mem *gm, const char *path, uint64_t kernel_end,
			  struct setup_header *hdr)
{
	uint64_t addr, size;
	int ret = initrd_load(gm, path, kernel_end, hdr->initrd_addr_max, &addr, &size);

	if (ret)
		return ret;
	/* Below 4 GiB: initrd_place never goes above low RAM. */
	hdr->ramdisk_image = addr;
	hdr->ramdisk_size = size;
	return 0;
}

static int bz_fill_e820(const struct guest_mem *gm, struct boot_params *bp)
{
	struct mem_map_entry map[E820_MAX_ENTRIES_ZEROPAGE];
	int i, n;

	n = mem_map_build(gm, map, E820_MAX_ENTRIES_ZEROPAGE);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		bp->e820_table[i].addr = map[i].addr;
		bp->e820_table[i].size = map[i].size;
		bp->e820_table[i].type = map[i].type;
	}
	bp->e820_entries = n;
	return 0;
}

int bzimage_load(struct guest_mem *gm, int fd, const char *path,
		 const struct boot_config *cfg, struct boot_entry *entry)
{
	struct boot_params bp;
	struct setup_header *hdr = &bp.hdr;
	uint64_t setup_sects, payload_off, payload, kernel_end;
	struct stat st;
	ssize_t n;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("cannot read kernel '%s': %s", path, strerror(errno));
		return ret;
	}
	ret = bz_read_header(fd, path, &bp);
	if (ret)
		return ret;
	if (hdr->version < BZ_MIN_VERSION || !(hdr->xloadflags & XLF_KERNEL_64)) {
		pr_err("bzImage '%s' uses boot protocol %u.%02u without a 64-bit entry; "
		       "tinyvmm needs 2.12 or later", path, hdr->version >> 8,
		       hdr->version & 0xff);
		return -ENOEXEC;
	}

	/* setup_sects == 0 means 4, for compatibility with ancient images. */
	setup_sects = hdr->setup_sects ? hdr->setup_sects : 4;
	payload_off = (setup_sects + 1) * 512;
	if ((uint64_t)st.st_size <= payload_off) {
		pr_err("bzImage '%s' is truncated: nothing after its %llu setup sectors",
		       path, (unsigned long long)setup_sects);
		return -ENOEXEC;
	}
	payload = st.st_size - payload_off;
	kernel_end = bz_kernel_end(hdr, payload);
	if (kernel_end > gmem_low_end(gm)) {
		pr_err("kernel '%s' needs %llu MiB but guest RAM is only %llu MiB (-m)",
		       path, (unsigned long long)mib_up(kernel_end),
		       (unsigned long long)(gmem_low_end(gm) / SZ_1M));
		return -ENOMEM;
	}

	ret = bz_write_cmdline(gm, path, hdr, cfg->cmdline ? cfg->cmdline : "");
	if (ret)
		return ret;

	n = pread_full(fd, gmem_ptr(gm, KERNEL_LOAD_ADDR, payload), payload, payload_off);
	if (n < 0 || (uint64_t)n != payload) {
		pr_err("cannot read kernel '%s': %s", path,
		       n < 0 ? strerror(-n) : "file changed size");
		return n < 0 ? (int)n : -EIO;
	}

	if (cfg->initrd_path) {
		ret = bz_load_initrd(gm, cfg->initrd_path, kernel_end, hdr);
		if (ret)
			return ret;
	}
	ret = bz_fill_e820(gm, &bp);
	if (ret)
		return ret;

	hdr->type_of_loader = BZ_LOADER_UNDEFINED;
	hdr->loadflags |= LOADED_HIGH | CAN_USE_HEAP;
	hdr->heap_end_ptr = BZ_HEAP_END;
	hdr->vid_mode = BZ_VID_MODE_NORMAL;
	if (gmem_write(gm, BOOT_ZERO_PAGE_ADDR, &bp, sizeof(bp))) {
		pr_err("guest RAM is too small for boot_params at 0x%llx", BOOT_ZERO_PAGE_ADDR);
		return -EFAULT;
	}
	ret = boot_write_gdt(gm);
	if (!ret)
		ret = boot_write_page_tables(gm);
	if (ret)
		return ret;

	memset(entry, 0, sizeof(*entry));
	entry->mode = BOOT_MODE_LONG64;
	entry->rip = KERNEL_LOAD_ADDR + BZ_ENTRY64_OFF;
	entry->rsi = BOOT_ZERO_PAGE_ADDR;
	entry->rsp = BOOT_STACK_TOP;
	entry->cr3 = BOOT_PML4_ADDR;
	entry->gdt_base = BOOT_GDT_ADDR;
	entry->gdt_limit = BOOT_GDT_LIMIT;
	return 0;
}
