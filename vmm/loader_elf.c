// SPDX-License-Identifier: MIT
/*
 * vmlinux through PVH: load the PT_LOAD segments at their physical
 * addresses, find the Xen PHYS32_ENTRY note and describe RAM, command line
 * and initrd in struct hvm_start_info.  Linux enters at the note's address
 * in 32-bit protected mode with EBX pointing at that structure.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"

#define PVH_CMDLINE_MAX		2048

#define PVH_MAX_MEMMAP	((BOOT_ZERO_PAGE_ADDR - BOOT_PVH_MEMMAP_ADDR) / \
			 sizeof(struct hvm_memmap_table_entry))
#define PVH_MODLIST_ADDR	(BOOT_PVH_INFO_ADDR + sizeof(struct hvm_start_info))
#define PVH_NO_ENTRY		UINT64_MAX

_Static_assert(PVH_MODLIST_ADDR + sizeof(struct hvm_modlist_entry) <= BOOT_PVH_MEMMAP_ADDR,
	       "PVH start info and modlist overlap the memory map");

static int elf_error(const char *path)
{
	pr_err("kernel '%s' is not a valid ELF file: %s", path, elf_errmsg(-1));
	return -ENOEXEC;
}

static int elf_load_segment(struct guest_mem *gm, int fd, const char *path,
			    const GElf_Phdr *ph, uint64_t file_size)
{
	uint8_t *dst;
	ssize_t n;

	if (ph->p_filesz > ph->p_memsz || ph->p_offset > file_size ||
	    ph->p_filesz > file_size - ph->p_offset) {
		pr_err("kernel '%s' has a malformed segment (at 0x%llx, file size 0x%llx, "
		       "memory size 0x%llx)", path, (unsigned long long)ph->p_paddr,
		       (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
		return -ENOEXEC;
	}
	/* Below 1 MiB are the boot structures and legacy areas. */
	dst = ph->p_paddr >= KERNEL_LOAD_ADDR ? gmem_ptr(gm, ph->p_paddr, ph->p_memsz) : NULL;
	if (!dst) {
		pr_err("kernel '%s' does not fit in guest RAM (segment at 0x%llx size 0x%llx)",
		       path, (unsigned long long)ph->p_paddr,
		       (unsigned long long)ph->p_memsz);
		return -ENOMEM;
	}
	n = pread_full(fd, dst, ph->p_filesz, ph->p_offset);
	if (n < 0 || (uint64_t)n != ph->p_filesz) {
		pr_err("cannot read kernel '%s': %s", path,
		       n < 0 ? strerror(-n) : "file is truncated");
		return n < 0 ? (int)n : -EIO;
	}
	/* bss: megabytes in a real vmlinux, zeroed without faulting them in. */
	return gmem_zero(gm, ph->p_paddr + ph->p_filesz, ph->p_memsz - ph->p_filesz);
}

/* Sets *entry when data holds the PVH note; -ENOEXEC if that note is malformed. */
static int elf_scan_notes(Elf_Data *data, const char *path, uint64_t *entry)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	if (!data)
		return 0;
	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const uint8_t *desc = (const uint8_t *)data->d_buf + desc_off;
		const char *name = (const char *)data->d_buf + name_off;
		uint32_t lo;

		off = next;
		if (nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY ||
		    nh.n_namesz != sizeof(XEN_ELFNOTE_OWNER) ||
		    memcmp(name, XEN_ELFNOTE_OWNER, sizeof(XEN_ELFNOTE_OWNER)))
			continue;
		/* 64-bit Linux emits the address as a .quad: use its low half. */
		if (nh.n_descsz != 4 && nh.n_descsz != 8) {
			pr_err("kernel '%s' has a malformed PVH entry note (%u bytes)",
			       path, (unsigned int)nh.n_descsz);
			return -ENOEXEC;
		}
		lo = (uint32_t)desc[0] | (uint32_t)desc[1] << 8 |
		     (uint32_t)desc[2] << 16 | (uint32_t)desc[3] << 24;
		*entry = lo;
		return 0;
	}
	return 0;
}

static int elf_find_pvh_entry(Elf *elf, const char *path, size_t phnum,
			      uint64_t *entry)
{
	Elf_Scn *scn = NULL;
	size_t i;
	int ret;

	*entry = PVH_NO_ENTRY;
	for (i = 0; i < phnum && *entry == PVH_NO_ENTRY; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_NOTE || !ph.p_filesz)
			continue;
		ret = elf_scan_notes(elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz,
							  ph.p_align == 8 ? ELF_T_NHDR8 :
							  ELF_T_NHDR), path, entry);
		if (ret)
			return ret;
	}
	/* Some link scripts keep notes out of any PT_NOTE: try the sections. */
	while (*entry == PVH_NO_ENTRY && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		ret = elf_scan_notes(elf_getdata(scn, NULL), path, entry);
		if (ret)
			return ret;
	}
	if (*entry == PVH_NO_ENTRY) {
		pr_err("kernel '%s' has no PVH entry note (build it with CONFIG_PVH=y)", path);
		return -ENOEXEC;
	}
	return 0;
}

/*
 * Load every PT_LOAD segment; *end is the highest byte loaded plus one.
 */
static int elf_load_segments(struct guest_mem *gm, Elf *elf, int fd, const char *path,
			     size_t phnum, uint64_t file_size, uint64_t *end)
{
	size_t i, loaded = 0;
	int ret;

	*end = 0;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph))
			return elf_error(path);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		ret = elf_load_segment(gm, fd, path, &ph, file_size);
		if (ret)
			return ret;
		*end = MAX(*end, ph.p_paddr + ph.p_memsz);
		loaded++;
	}
	if (!loaded) {
		pr_err("kernel '%s' has nothing to load (no PT_LOAD segment)", path);
		return -ENOEXEC;
	}
	return 0;
}

static int pvh_load_initrd(struct guest_mem *gm, const char *path, uint64_t kernel_end,
			   struct hvm_modlist_entry *mod)
{
	uint64_t addr, size;
	/* PVH modules are 64-bit, but Linux copies them to 32-bit fields. */
	int ret = initrd_load(gm, path, kernel_end, UINT32_MAX, &addr, &size);

	if (ret)
		return ret;
	memset(mod, 0, sizeof(*mod));
	mod->paddr = addr;
	mod->size = size;
	return 0;
}

static int pvh_write_cmdline(struct guest_mem *gm, const char *cmdline)
{
	size_t len = strlen(cmdline);

	/* Linux's PVH entry copies it into a COMMAND_LINE_SIZE (2048) buffer. */
	if (len >= PVH_CMDLINE_MAX) {
		pr_err("kernel command line is %zu bytes; a PVH kernel takes at most %d (--cmdline)",
		       len, PVH_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	return gmem_write(gm, BOOT_CMDLINE_ADDR, cmdline, len + 1);
}

static int pvh_write_start_info(struct guest_mem *gm, const struct boot_config *cfg,
				uint64_t kernel_end)
{
	struct hvm_memmap_table_entry mm[PVH_MAX_MEMMAP];
	struct mem_map_entry map[PVH_MAX_MEMMAP];
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC_VALUE,
		.version = XEN_HVM_START_VERSION,
		.cmdline_paddr = BOOT_CMDLINE_ADDR,
		.memmap_paddr = BOOT_PVH_MEMMAP_ADDR,
	};
	struct hvm_modlist_entry mod;
	int i, n, ret;

	n = mem_map_build(gm, map, PVH_MAX_MEMMAP);
	if (n < 0)
		return n;
	memset(mm, 0, sizeof(mm));
	for (i = 0; i < n; i++) {
		mm[i].addr = map[i].addr;
		mm[i].size = map[i].size;
		mm[i].type = map[i].type;
	}
	si.memmap_entries = n;

	if (cfg->initrd_path) {
		ret = pvh_load_initrd(gm, cfg->initrd_path, kernel_end, &mod);
		if (ret)
			return ret;
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST_ADDR;
		if (gmem_write(gm, PVH_MODLIST_ADDR, &mod, sizeof(mod)))
			goto fault;
	}
	if (gmem_write(gm, BOOT_PVH_MEMMAP_ADDR, mm, n * sizeof(mm[0])) ||
	    gmem_write(gm, BOOT_PVH_INFO_ADDR, &si, sizeof(si)))
		goto fault;
	return 0;
fault:
	pr_err("guest RAM is too small for the PVH start info at 0x%llx", BOOT_PVH_INFO_ADDR);
	return -EFAULT;
}

int elf_load_pvh(struct guest_mem *gm, int fd, const char *path,
		 const struct boot_config *cfg, struct boot_entry *entry)
{
	uint64_t pvh_entry, kernel_end;
	struct stat st;
	GElf_Ehdr eh;
	size_t phnum;
	Elf *elf;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("cannot read kernel '%s': %s", path, strerror(errno));
		return ret;
	}
	if (elf_version(EV_CURRENT) == EV_NONE)
		return elf_error(path);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return elf_error(path);

	ret = -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		ret = elf_error(path);
		goto out;
	}
	if (gelf_getclass(elf) != ELFCLASS64) {
		pr_err("kernel '%s' is a 32-bit ELF file; tinyvmm needs a 64-bit x86 vmlinux",
		       path);
		goto out;
	}
	if (eh.e_machine != EM_X86_64) {
		pr_err("kernel '%s' is an ELF file for machine %u, not x86-64",
		       path, (unsigned int)eh.e_machine);
		goto out;
	}
	if (elf_getphdrnum(elf, &phnum)) {
		ret = elf_error(path);
		goto out;
	}

	/* Look for the note first: without it nothing is worth loading. */
	ret = elf_find_pvh_entry(elf, path, phnum, &pvh_entry);
	if (!ret)
		ret = elf_load_segments(gm, elf, fd, path, phnum, st.st_size, &kernel_end);
	if (!ret && !gmem_ptr(gm, pvh_entry, 1)) {
		pr_err("kernel '%s' has its PVH entry at 0x%llx, outside guest RAM",
		       path, (unsigned long long)pvh_entry);
		ret = -ENOEXEC;
	}
	if (!ret)
		ret = pvh_write_cmdline(gm, cfg->cmdline ? cfg->cmdline : "");
	if (!ret)
		ret = pvh_write_start_info(gm, cfg, kernel_end);
	if (!ret)
		ret = boot_write_gdt(gm);
	if (ret)
		goto out;

	memset(entry, 0, sizeof(*entry));
	entry->mode = BOOT_MODE_PVH32;
	entry->rip = pvh_entry;
	entry->rbx = BOOT_PVH_INFO_ADDR;
	/* PVH promises no stack; one costs nothing and helps debugging. */
	entry->rsp = BOOT_STACK_TOP;
	entry->gdt_base = BOOT_GDT_ADDR;
	entry->gdt_limit = BOOT_GDT_LIMIT;
out:
	elf_end(elf);
	return ret;
}
