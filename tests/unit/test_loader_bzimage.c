// SPDX-License-Identifier: MIT
/* bzImage loader over synthesized images: what Linux finds in boot_params. */
#include <asm/bootparam.h>
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

#define MAX_TMP		8
#define PAYLOAD_LEN	(8192 + 123)

struct ctx {
	struct guest_mem gm;
	char paths[MAX_TMP][64];
	int nr_paths;
};

struct fake_bz {
	uint8_t setup_sects;
	uint16_t version;
	uint16_t xloadflags;
	uint32_t init_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint32_t kernel_alignment;
	uint8_t relocatable;
	uint64_t payload_len;		/* 0: PAYLOAD_LEN */
	uint64_t sparse_len;		/* extend the file with a hole */
};

static const struct fake_bz default_bz = {
	.setup_sects = 1,
	.version = 0x020f,
	.xloadflags = XLF_KERNEL_64,
	.init_size = 4 * SZ_1M,
	.initrd_addr_max = 0x7fffffff,
	.cmdline_size = 2047,
	.relocatable = 1,
	.kernel_alignment = 0x200000,
};

static uint8_t payload_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static uint8_t initrd_byte(uint64_t i)
{
	return (uint8_t)(i * 13 + 1);
}

static const char *tmp_file(struct ctx *c, const void *data, size_t len, uint64_t sparse_len)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	int fd;

	assert_true(c->nr_paths < MAX_TMP);
	path = c->paths[c->nr_paths];
	snprintf(path, sizeof(c->paths[0]), "%s/tvmm-bz-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	c->nr_paths++;
	assert_int_equal(write_full(fd, data, len), (ssize_t)len);
	if (sparse_len)
		assert_int_equal(ftruncate(fd, sparse_len), 0);
	close(fd);
	return path;
}

/* A bzImage as far as the loader can tell: setup sectors, then a payload. */
static const char *make_bz(struct ctx *c, const struct fake_bz *f)
{
	uint64_t sects = f->setup_sects ? f->setup_sects : 4;
	uint64_t plen = f->payload_len ? f->payload_len : PAYLOAD_LEN;
	size_t off = (sects + 1) * 512, len = off + plen, i;
	struct setup_header *h;
	const char *path;
	uint8_t *buf;

	buf = calloc(1, len);
	assert_non_null(buf);
	memset(buf, 0xee, off);		/* junk the loader must not copy */
	h = (struct setup_header *)(buf + 0x1f1);
	memset(h, 0, sizeof(*h));
	h->setup_sects = f->setup_sects;
	h->boot_flag = 0xaa55;
	h->jump = 0x66eb;		/* jmp 0x268: header ends there */
	memcpy(&h->header, "HdrS", 4);
	h->version = f->version;
	h->loadflags = LOADED_HIGH;
	h->xloadflags = f->xloadflags;
	h->init_size = f->init_size;
	h->initrd_addr_max = f->initrd_addr_max;
	h->cmdline_size = f->cmdline_size;
	h->pref_address = f->pref_address;
	h->kernel_alignment = f->kernel_alignment;
	h->relocatable_kernel = f->relocatable;
	h->kernel_info_offset = 0xdeadbeef;	/* past 0x268: not copied */
	for (i = 0; i < plen; i++)
		buf[off + i] = payload_byte(i);
	path = tmp_file(c, buf, len, f->sparse_len);
	free(buf);
	return path;
}

static const char *make_initrd(struct ctx *c, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	const char *path;
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < len; i++)
		buf[i] = initrd_byte(i);
	path = tmp_file(c, buf, len, 0);
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
	ret = bzimage_load(&c->gm, fd, kernel, &cfg, e);
	close(fd);
	return ret;
}

static void read_bp(struct ctx *c, struct boot_params *bp)
{
	assert_int_equal(gmem_read(&c->gm, BOOT_ZERO_PAGE_ADDR, bp, sizeof(*bp)), 0);
}

static int setup_ram(struct ctx *c, uint64_t size)
{
	memset(c, 0, sizeof(*c));
	return gmem_init(&c->gm, size);
}

static int setup_256m(void **state)
{
	static struct ctx c;

	*state = &c;
	return setup_ram(&c, 256 * SZ_1M);
}

static int setup_16m(void **state)
{
	static struct ctx c;

	*state = &c;
	return setup_ram(&c, 16 * SZ_1M);
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

static void check_payload(struct ctx *c, uint64_t len)
{
	const uint8_t *k = gmem_ptr(&c->gm, KERNEL_LOAD_ADDR, len);
	uint64_t i;

	assert_non_null(k);
	for (i = 0; i < len; i++)
		if (k[i] != payload_byte(i))
			fail_msg("payload byte %llu differs", (unsigned long long)i);
}

static void test_load_full(void **state)
{
	static const char cmdline[] = "console=ttyS0 root=/dev/vda rw";
	struct mem_map_entry map[8];
	struct ctx *c = *state;
	struct boot_params bp;
	struct boot_entry e;
	const uint8_t *rd;
	int i, n;

	const char *kernel = make_bz(c, &default_bz);
	const char *initrd = make_initrd(c, 100000);

	assert_int_equal(load(c, kernel, initrd, cmdline, &e), 0);
	read_bp(c, &bp);

	/* The header came from the file, then the loader's fields. */
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.init_size, 4 * SZ_1M);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags & (LOADED_HIGH | CAN_USE_HEAP),
			 LOADED_HIGH | CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp.hdr.vid_mode, 0xffff);
	/* Clean boot_params: nothing outside the header was copied. */
	assert_int_equal(bp.sentinel, 0);
	assert_int_equal(bp.hdr.kernel_info_offset, 0);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);

	assert_int_equal(bp.hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	assert_string_equal((const char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, sizeof(cmdline)),
			    cmdline);

	n = mem_map_build(&c->gm, map, 8);
	assert_int_equal(bp.e820_entries, 4);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		assert_int_equal(bp.e820_table[i].addr, map[i].addr);
		assert_int_equal(bp.e820_table[i].size, map[i].size);
		assert_int_equal(bp.e820_table[i].type, map[i].type);
	}
	assert_int_equal(bp.e820_table[3].addr + bp.e820_table[3].size, 256 * SZ_1M);

	/* The initrd: page aligned, at the top of RAM, above the kernel. */
	assert_int_equal(bp.hdr.ramdisk_size, 100000);
	assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
	assert_true(bp.hdr.ramdisk_image >= KERNEL_LOAD_ADDR + 4 * SZ_1M);
	assert_true(bp.hdr.ramdisk_image + 100000 <= 256 * SZ_1M);
	assert_true(bp.hdr.ramdisk_image + 100000 > 256 * SZ_1M - 4096);
	rd = gmem_ptr(&c->gm, bp.hdr.ramdisk_image, 100000);
	assert_non_null(rd);
	for (i = 0; i < 100000; i++)
		if (rd[i] != initrd_byte(i))
			fail_msg("initrd byte %d differs", i);

	check_payload(c, PAYLOAD_LEN);

	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, KERNEL_LOAD_ADDR + 0x200);
	assert_int_equal(e.rsi, BOOT_ZERO_PAGE_ADDR);
	assert_int_equal(e.cr3, BOOT_PML4_ADDR);
	assert_int_equal(e.rsp, BOOT_STACK_TOP);
	assert_int_equal(e.gdt_base, BOOT_GDT_ADDR);
	assert_int_equal(e.gdt_limit, 31);

	/* GDT and page tables are in place for the long mode entry. */
	assert_int_equal(*(uint64_t *)gmem_ptr(&c->gm, BOOT_GDT_ADDR + BOOT_CS_SELECTOR, 8),
			 0x00AF9B000000FFFFULL);
	assert_int_equal(*(uint64_t *)gmem_ptr(&c->gm, BOOT_PML4_ADDR, 8), BOOT_PDPT_ADDR | 3);
}

static void test_setup_sects_zero(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_params bp;
	struct boot_entry e;

	/* 0 means 4: the payload starts at 5 * 512. */
	f.setup_sects = 0;
	assert_int_equal(load(c, make_bz(c, &f), NULL, "", &e), 0);
	check_payload(c, PAYLOAD_LEN);
	read_bp(c, &bp);
	assert_int_equal(bp.hdr.setup_sects, 0);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(*(char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, 1), 0);
}

static void test_initrd_addr_max(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_params bp;
	struct boot_entry e;

	f.initrd_addr_max = 64 * SZ_1M - 1;
	assert_int_equal(load(c, make_bz(c, &f), make_initrd(c, 5000), NULL, &e), 0);
	read_bp(c, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, 64 * SZ_1M - 8192);
	assert_int_equal(bp.hdr.ramdisk_size, 5000);
	assert_int_equal(*(uint8_t *)gmem_ptr(&c->gm, bp.hdr.ramdisk_image + 4999, 1),
			 initrd_byte(4999));
}

static void test_pref_address(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_params bp;
	struct boot_entry e;

	/*
	 * A kernel that decompresses at 16 MiB with a 100 MiB init_size: the
	 * initrd must stay out of [16 MiB, 116 MiB).
	 */
	f.pref_address = 16 * SZ_1M;
	f.init_size = 100 * SZ_1M;
	f.initrd_addr_max = 120 * SZ_1M - 1;
	assert_int_equal(load(c, make_bz(c, &f), make_initrd(c, 5 * SZ_1M), NULL, &e), -ENOMEM);
	assert_int_equal(load(c, make_bz(c, &f), make_initrd(c, 4 * SZ_1M), NULL, &e), 0);
	read_bp(c, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, 116 * SZ_1M);
	assert_int_equal(bp.hdr.pref_address, 16 * SZ_1M);
}

static void test_old_protocol(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_entry e;

	f.version = 0x0204;
	f.xloadflags = 0;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), -ENOEXEC);
}

static void test_no_kernel64(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_entry e;

	f.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), -ENOEXEC);
}

static void test_cmdline_size(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_entry e;
	const char *k;

	/* cmdline_size does not count the NUL: 16 characters fit, 17 do not. */
	f.cmdline_size = 16;
	k = make_bz(c, &f);
	assert_int_equal(load(c, k, NULL, "0123456789abcdefX", &e), -E2BIG);
	assert_int_equal(load(c, k, NULL, "0123456789abcdef", &e), 0);
	assert_string_equal((char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, 17),
			    "0123456789abcdef");
}

static void test_cmdline_buffer(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;
	struct boot_entry e;
	char *big;

	/* A kernel accepting more than tinyvmm's buffer still gets its limit. */
	f.cmdline_size = 1 << 20;
	big = malloc(BOOT_CMDLINE_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', BOOT_CMDLINE_MAX);
	big[BOOT_CMDLINE_MAX] = 0;
	assert_int_equal(load(c, make_bz(c, &f), NULL, big, &e), -E2BIG);
	free(big);
}

static void test_too_big_for_ram(void **state)
{
	struct fake_bz f = default_bz;
	struct ctx *c = *state;	/* 16 MiB of RAM */
	struct boot_entry e;

	/* init_size is what counts, not the file size. */
	f.init_size = 16 * SZ_1M;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), -ENOMEM);

	/* And a payload larger than RAM (sparse file). */
	f = default_bz;
	f.sparse_len = 20 * SZ_1M;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), -ENOMEM);

	/*
	 * Fits exactly.  The decompressor runs at the load address rounded
	 * up to kernel_alignment: 2 MiB + 14 MiB, or 1 MiB + 15 MiB.
	 */
	f = default_bz;
	f.init_size = 14 * SZ_1M;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), 0);
	f.init_size = 15 * SZ_1M;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), -ENOMEM);
	f.kernel_alignment = SZ_1M;
	assert_int_equal(load(c, make_bz(c, &f), NULL, NULL, &e), 0);
}

static void test_truncated(void **state)
{
	struct ctx *c = *state;
	struct boot_entry e;
	uint8_t junk[2048];
	const char *k;
	int fd;

	/* A header and setup sectors but no protected-mode kernel. */
	k = make_bz(c, &default_bz);
	fd = open(k, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1024), 0);
	close(fd);
	assert_int_equal(load(c, k, NULL, NULL, &e), -ENOEXEC);

	/* Not a bzImage at all. */
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(load(c, tmp_file(c, junk, sizeof(junk), 0), NULL, NULL, &e),
			 -ENOEXEC);
}

static void test_bad_initrd(void **state)
{
	struct ctx *c = *state;
	struct boot_entry e;
	const char *k = make_bz(c, &default_bz);

	assert_int_equal(load(c, k, "/nonexistent/initrd.img", NULL, &e), -ENOENT);
	assert_int_equal(load(c, k, "/", NULL, &e), -EISDIR);
	assert_int_equal(load(c, k, make_initrd(c, 0), NULL, &e), -EINVAL);
}

static void test_kernel_load_dispatch(void **state)
{
	struct ctx *c = *state;
	struct boot_config cfg = { .cmdline = "quiet" };
	struct boot_entry e;

	cfg.kernel_path = make_bz(c, &default_bz);
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_string_equal((char *)gmem_ptr(&c->gm, BOOT_CMDLINE_ADDR, 6), "quiet");
	check_payload(c, PAYLOAD_LEN);

	/* The initrd is checked before anything is loaded. */
	cfg.initrd_path = "/nonexistent/initrd.img";
	assert_int_equal(kernel_load(&c->gm, &cfg, &e), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_full, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_setup_sects_zero, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_addr_max, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_pref_address, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_old_protocol, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_no_kernel64, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_size, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_buffer, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_for_ram, setup_16m, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_bad_initrd, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_load_dispatch, setup_256m, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
