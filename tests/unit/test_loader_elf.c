// SPDX-License-Identifier: MIT
/*
 * vmlinux/PVH loader over hand-written ELF files, kernel_detect() and the
 * kernel_load() front end.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"

#define MAX_TMP		4
#define FILE_LEN	0x4000
#define NOTE_OFF	0x200
#define SHDR_OFF	0x400
#define SHSTR_OFF	0x500
#define ENTRY		0x01000040ULL

enum note_where { NOTE_NONE, NOTE_SEGMENT, NOTE_SECTION };

struct fake_seg {
	uint64_t paddr, offset, filesz, memsz;
};

struct fake_elf {
	uint8_t class;
	uint16_t machine;
	enum note_where note;
	uint32_t descsz;		/* 4 or 8 */
	uint64_t desc;
	uint64_t note_align;
	struct fake_seg seg[2];
	int nr_segs;
};

static const struct fake_elf default_elf = {
	.class = ELFCLASS64,
	.machine = EM_X86_64,
	.note = NOTE_SEGMENT,
	.descsz = 8,
	/* Linux's .quad: the high half is the kernel map, to be dropped. */
	.desc = 0xffffffff00000000ULL | ENTRY,
	.note_align = 4,
	.seg = {
		{ .paddr = 0x1000000, .offset = 0x1000, .filesz = 0x1800, .memsz = 0x1800 },
		{ .paddr = 0x1200000, .offset = 0x3000, .filesz = 0x800, .memsz = 0x5000 },
	},
	.nr_segs = 2,
};

struct ctx {
	struct guest_mem gm;
	char paths[MAX_TMP][64];
	int nr_paths;
};

static uint8_t file_byte(uint64_t off)
{
	return (uint8_t)(off * 5 + 11);
}

static const char *tmp_file(struct ctx *c, const void *data, size_t len)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	int fd;

	assert_true(c->nr_paths < MAX_TMP);
	path = c->paths[c->nr_paths];
	snprintf(path, sizeof(c->paths[0]), "%s/tvmm-elf-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	c->nr_paths++;
	assert_int_equal(write_full(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/*
 * With 8-byte alignment (gABI, and what elfutils assumes of an 8-aligned
 * PT_NOTE) the descriptor and the next note start on 8 bytes; names of
 * 4 bytes keep the descriptor at offset 16 either way.
 */
static size_t put_note(uint8_t *p, const char *name, uint32_t type,
		       const void *desc, uint32_t descsz, size_t align)
{
	Elf64_Nhdr nh = {
		.n_namesz = strlen(name) + 1, .n_descsz = descsz, .n_type = type,
	};
	size_t off = sizeof(nh);

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + off, name, nh.n_namesz);
	off += ALIGN_UP(nh.n_namesz, 4);
	memcpy(p + off, desc, descsz);
	return ALIGN_UP(off + descsz, align);
}

/* Notes: a GNU one and an unrelated Xen one first, so that scanning is tested. */
static size_t put_notes(uint8_t *p, const struct fake_elf *f)
{
	static const uint8_t build_id[20] = { 1, 2, 3 };
	uint32_t other = 0x12345678;
	size_t n = 0;

	n += put_note(p + n, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id),
		      f->note_align);
	n += put_note(p + n, XEN_ELFNOTE_OWNER, 1 /* ENTRY */, &other, sizeof(other),
		      f->note_align);
	n += put_note(p + n, XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY, &f->desc,
		      f->descsz, f->note_align);
	return n;
}

static void build64(uint8_t *buf, const struct fake_elf *f)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	size_t notes = 0;
	int i, n = 0;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = f->machine;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0xffffffff81000000ULL;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);

	if (f->note != NOTE_NONE)
		notes = put_notes(buf + NOTE_OFF, f);
	for (i = 0; i < f->nr_segs; i++, n++) {
		ph[n].p_type = PT_LOAD;
		ph[n].p_flags = PF_R | PF_X;
		ph[n].p_offset = f->seg[i].offset;
		ph[n].p_vaddr = 0xffffffff80000000ULL + f->seg[i].paddr;
		ph[n].p_paddr = f->seg[i].paddr;
		ph[n].p_filesz = f->seg[i].filesz;
		ph[n].p_memsz = f->seg[i].memsz;
		ph[n].p_align = 0x1000;
	}
	if (f->note == NOTE_SEGMENT) {
		ph[n].p_type = PT_NOTE;
		ph[n].p_offset = NOTE_OFF;
		ph[n].p_filesz = notes;
		ph[n].p_align = f->note_align;
		n++;
	}
	eh->e_phnum = n;

	if (f->note == NOTE_SECTION) {
		static const char shstr[] = "\0.notes\0.shstrtab";
		Elf64_Shdr *sh = (Elf64_Shdr *)(buf + SHDR_OFF);

		memcpy(buf + SHSTR_OFF, shstr, sizeof(shstr));
		sh[1].sh_name = 1;
		sh[1].sh_type = SHT_NOTE;
		sh[1].sh_offset = NOTE_OFF;
		sh[1].sh_size = notes;
		sh[1].sh_addralign = 4;
		sh[2].sh_name = 8;
		sh[2].sh_type = SHT_STRTAB;
		sh[2].sh_offset = SHSTR_OFF;
		sh[2].sh_size = sizeof(shstr);
		sh[2].sh_addralign = 1;
		eh->e_shoff = SHDR_OFF;
		eh->e_shentsize = sizeof(*sh);
		eh->e_shnum = 3;
		eh->e_shstrndx = 2;
	}
}

static void build32(uint8_t *buf)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)buf;
	Elf32_Phdr *ph = (Elf32_Phdr *)(buf + sizeof(*eh));

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = 0x1000;
	ph->p_paddr = 0x1000000;
	ph->p_filesz = ph->p_memsz = 0x1000;
}

static const char *make_elf(struct ctx *c, const struct fake_elf *f)
{
	uint8_t *buf = calloc(1, FILE_LEN);
	const char *path;
	size_t i;

	assert_non_null(buf);
	for (i = 0x1000; i < FILE_LEN; i++)
		buf[i] = file_byte(i);
	if (f->class == ELFCLASS64)
		build64(buf, f);
	else
		build32(buf);
	path = tmp_file(c, buf, FILE_LEN);
	free(buf);
	return path;
}

static const char *make_initrd(struct ctx *c, size_t len)
{
	uint8_t *buf = malloc(len);
	const char *path;
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	path = tmp_file(c, buf, len);
	free(buf);
	return path;
}

static int load(struct ctx *c, const char *kernel, const char *initrd,
		const char *cmdline, struct boot_entry *e)
{
	struct boot_config cfg = {
		.kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline,
	};
	int fd = open(kernel, O_RDONLY), ret;

	assert_true(fd >= 0);
	ret = elf_load_pvh(&c->gm, fd, kernel, &cfg, e);
	close(fd);
	return ret;
}

static int setup(void **state)
{
	static struct ctx c;

	memset(&c, 0, sizeof(c));
	*state = &c;
	return gmem_init(&c.gm, 256 * SZ_1M);
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	int i;

	for (i = 0; i < c->nr_paths; i++)
		unlink(c->paths[i]);
	gmem_free(&c->gm);
	return 0;
}

static void check_segments(struct ctx *c, const struct fake_elf *f)
{
	int s;

	for (s = 0; s < f->nr_segs; s++) {
		const struct fake_seg *seg = &f->seg[s];
		const uint8_t *p = gmem_ptr(&c->gm, seg->paddr, seg->memsz);
		uint64_t i;

		assert_non_null(p);
		for (i = 0; i < seg->filesz; i++)
			if (p[i] != file_byte(seg->offset + i))
				fail_msg("segment %d byte 0x%llx differs", s,
					 (unsigned long long)i);
		for (; i < seg->memsz; i++)
			if (p[i])
				fail_msg("segment %d bss byte 0x%llx not zero", s,
					 (unsigned long long)i);
	}
}

static void check_entry(const struct boot_entry *e)
{
	assert_int_equal(e->mode, BOOT_MODE_PVH32);
	assert_int_equal(e->rip, ENTRY);
	assert_int_equal(e->rbx, BOOT_PVH_INFO_ADDR);
	assert_int_equal(e->rsp, BOOT_STACK_TOP);
	assert_int_equal(e->gdt_base, BOOT_GDT_ADDR);
	assert_int_equal(e->gdt_limit, 31);
}

static void test_load_with_initrd(void **state)
{
	static const char cmdline[] = "console=ttyS0 earlyprintk=serial";
	struct hvm_memmap_table_entry mm[8];
	struct mem_map_entry map[8];
	struct hvm_modlist_entry mod;
	struct ctx *c = *state;
	struct hvm_start_info si;
	struct boot_entry e;
	const uint8_t *rd;
	int i, n;

	const char *kernel = make_elf(c, &default_elf);
	const char *initrd = make_initrd(c, 30000);

	/* Stale bytes where the bss goes must be cleared. */
	memset(gmem_ptr(&c->gm, 0x1200000, 0x5000), 0xaa, 0x5000);
	assert_int_equal(load(c, kernel, initrd, cmdline, &e), 0);
	check_segments(c, &default_elf);
	check_entry(&e);

	assert_int_equal(gmem_read(&c->gm, BOOT_PVH_INFO_ADDR, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, XEN_HVM_START_MAGIC_VALUE);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.rsdp_paddr, 0);
	assert_int_equal(si.cmdline_paddr, BOOT_CMDLINE_ADDR);
	assert_string_equal((char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, sizeof(cmdline)),
			    cmdline);

	n = mem_map_build(&c->gm, map, 8);
	assert_int_equal(si.memmap_paddr, BOOT_PVH_MEMMAP_ADDR);
	assert_int_equal(si.memmap_entries, n);
	assert_int_equal(gmem_read(&c->gm, si.memmap_paddr, mm, n * sizeof(mm[0])), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(mm[i].addr, map[i].addr);
		assert_int_equal(mm[i].size, map[i].size);
		assert_int_equal(mm[i].type, map[i].type);
		assert_int_equal(mm[i].reserved, 0);
	}
	assert_int_equal(mm[n - 1].addr + mm[n - 1].size, 256 * SZ_1M);

	assert_int_equal(si.nr_modules, 1);
	assert_true(si.modlist_paddr >= BOOT_PVH_INFO_ADDR + sizeof(si));
	assert_true(si.modlist_paddr + sizeof(mod) <= BOOT_PVH_MEMMAP_ADDR);
	assert_int_equal(gmem_read(&c->gm, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.size, 30000);
	assert_int_equal(mod.paddr % 4096, 0);
	assert_int_equal(mod.cmdline_paddr, 0);
	/* Above everything loaded, bss included; inside RAM. */
	assert_true(mod.paddr >= 0x1205000);
	assert_true(mod.paddr + mod.size <= 256 * SZ_1M);
	rd = gmem_ptr(&c->gm, mod.paddr, mod.size);
	assert_non_null(rd);
	for (i = 0; i < 30000; i++)
		if (rd[i] != (uint8_t)(i ^ 0x5a))
			fail_msg("initrd byte %d differs", i);
}

static void test_load_no_initrd(void **state)
{
	struct ctx *c = *state;
	struct hvm_start_info si;
	struct boot_entry e;

	assert_int_equal(load(c, make_elf(c, &default_elf), NULL, NULL, &e), 0);
	check_entry(&e);
	assert_int_equal(gmem_read(&c->gm, BOOT_PVH_INFO_ADDR, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	assert_int_equal(si.memmap_entries, 4);
	assert_int_equal(*(char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, 1), 0);
	/* The 32-bit code segment the PVH entry runs on. */
	assert_int_equal(*(uint64_t *)gmem_ptr(&c->gm, BOOT_GDT_ADDR + 8, 8),
			 0x00CF9B000000FFFFULL);
}

static void test_note_variants(void **state)
{
	struct fake_elf f = default_elf;
	struct ctx *c = *state;
	struct boot_entry e;

	/* A 4-byte descriptor, as the PVH spec has it. */
	f.descsz = 4;
	f.desc = ENTRY;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), 0);
	assert_int_equal(e.rip, ENTRY);

	/* Notes only in a SHT_NOTE section, no PT_NOTE. */
	f = default_elf;
	f.note = NOTE_SECTION;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), 0);
	assert_int_equal(e.rip, ENTRY);

	/* An 8-aligned PT_NOTE. */
	f = default_elf;
	f.note_align = 8;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), 0);
	assert_int_equal(e.rip, ENTRY);
}

static void test_no_note(void **state)
{
	struct fake_elf f = default_elf;
	struct ctx *c = *state;
	struct boot_entry e;

	f.note = NOTE_NONE;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
	/* A malformed descriptor is an error too, not a silent miss. */
	f = default_elf;
	f.descsz = 2;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
}

static void test_wrong_class_machine(void **state)
{
	struct fake_elf f = default_elf;
	struct ctx *c = *state;
	struct boot_entry e;

	f.class = ELFCLASS32;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
	f = default_elf;
	f.machine = EM_AARCH64;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
}

static void test_segment_outside_ram(void **state)
{
	struct fake_elf f = default_elf;
	struct ctx *c = *state;
	struct boot_entry e;

	/* The bss runs past the end of the 256 MiB of RAM. */
	f.seg[1].paddr = 256 * SZ_1M - 0x1000;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOMEM);
	/* Below 1 MiB, over the boot structures. */
	f = default_elf;
	f.seg[0].paddr = 0x6000;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOMEM);
	/* Wraps around. */
	f = default_elf;
	f.seg[1].paddr = UINT64_MAX - 0x100;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOMEM);
}

static void test_malformed_segments(void **state)
{
	struct fake_elf f = default_elf;
	struct ctx *c = *state;
	struct boot_entry e;

	f.seg[0].filesz = f.seg[0].memsz + 1;
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
	f = default_elf;
	f.seg[1].filesz = f.seg[1].memsz = FILE_LEN;	/* past EOF */
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
	f = default_elf;
	f.seg[1].offset = UINT64_MAX - 0x10;		/* offset + size wraps */
	assert_int_equal(load(c, make_elf(c, &f), NULL, NULL, &e), -ENOEXEC);
}

static void test_detect(void **state)
{
	uint8_t buf[0x400];

	memset(buf, 0, sizeof(buf));
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(kernel_detect(NULL, 0), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(kernel_detect(buf, 0), KERNEL_FORMAT_UNKNOWN);

	memcpy(buf, ELFMAG, SELFMAG);
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_ELF);
	assert_int_equal(kernel_detect(buf, SELFMAG), KERNEL_FORMAT_ELF);
	assert_int_equal(kernel_detect(buf, SELFMAG - 1), KERNEL_FORMAT_UNKNOWN);

	memset(buf, 0x90, sizeof(buf));
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_UNKNOWN);
	buf[0x1fe] = 0x55;
	buf[0x1ff] = 0xaa;
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_UNKNOWN);
	memcpy(buf + 0x202, "HdrS", 4);
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_BZIMAGE);
	assert_int_equal(kernel_detect(buf, 0x206), KERNEL_FORMAT_BZIMAGE);
	assert_int_equal(kernel_detect(buf, 0x205), KERNEL_FORMAT_UNKNOWN);
	buf[0x1fe] = 0x00;		/* HdrS alone is not enough */
	assert_int_equal(kernel_detect(buf, sizeof(buf)), KERNEL_FORMAT_UNKNOWN);
}

static void test_kernel_load(void **state)
{
	static const uint8_t junk[1000] = { 'M', 'Z' };
	struct boot_config cfg = { .cmdline = "ro" };
	struct ctx *c = *state;
	struct boot_entry e;
	char *big;

	cfg.kernel_path = "/nonexistent/vmlinux";
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOENT);
	cfg.kernel_path = tmp_file(c, junk, sizeof(junk));
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOEXEC);
	cfg.kernel_path = tmp_file(c, junk, 0);			/* empty */
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOEXEC);
	cfg.kernel_path = "/";
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOEXEC);

	cfg.kernel_path = make_elf(c, &default_elf);
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), 0);
	check_entry(&e);
	assert_string_equal((char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, 3), "ro");

	cfg.initrd_path = "/nonexistent/initrd";
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOENT);
	cfg.initrd_path = NULL;

	big = malloc(BOOT_CMDLINE_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', BOOT_CMDLINE_MAX);
	big[BOOT_CMDLINE_MAX] = 0;
	cfg.cmdline = big;
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -E2BIG);
	/* A PVH kernel copies the cmdline into 2048 bytes: 2047 fit, 2048 do not. */
	big[2048] = 0;
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -E2BIG);
	big[2047] = 0;
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), 0);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_with_initrd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_no_initrd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_note_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_note, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_class_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_segments, setup, teardown),
		cmocka_unit_test(test_detect),
		cmocka_unit_test_setup_teardown(test_kernel_load, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
