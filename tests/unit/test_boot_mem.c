// SPDX-License-Identifier: MIT
/* Memory map, initrd placement, boot GDT and identity page tables. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define MAP_MAX 16

static void check_map(uint64_t ram_size, int expect_entries)
{
	struct mem_map_entry map[MAP_MAX];
	uint64_t ram = 0, prev_end = 0;
	struct guest_mem gm;
	int i, n;

	assert_int_equal(gmem_init(&gm, ram_size), 0);
	n = mem_map_build(&gm, map, MAP_MAX);
	assert_int_equal(n, expect_entries);

	for (i = 0; i < n; i++) {
		uint64_t end = map[i].addr + map[i].size;

		assert_true(map[i].size > 0);
		assert_true(map[i].addr >= prev_end);	/* sorted, no overlap */
		assert_true(map[i].type == E820_TYPE_RAM ||
			    map[i].type == E820_TYPE_RESERVED);
		if (map[i].type == E820_TYPE_RAM) {
			/* Never RAM in the PCI hole, and always backed. */
			assert_true(end <= GMEM_32BIT_GAP_START || map[i].addr >= GMEM_4G);
			assert_non_null(gmem_ptr(&gm, map[i].addr, map[i].size));
			ram += map[i].size;
		}
		prev_end = end;
	}
	/* Everything but [EBDA, 1 MiB) is usable RAM. */
	assert_int_equal(ram, ram_size - (BIOS_AREA_END - EBDA_START));

	/* The first entries are the same for every size. */
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, EBDA_START);
	assert_int_equal(map[1].addr, EBDA_START);
	assert_int_equal(map[1].type, E820_TYPE_RESERVED);
	assert_int_equal(map[2].addr, BIOS_AREA_START);
	assert_int_equal(map[2].size, BIOS_AREA_END - BIOS_AREA_START);
	assert_int_equal(map[2].type, E820_TYPE_RESERVED);
	assert_int_equal(map[3].addr, BIOS_AREA_END);
	assert_int_equal(map[3].addr + map[3].size, MIN(ram_size, GMEM_32BIT_GAP_START));
	gmem_free(&gm);
}

static void test_map_256m(void **state)
{
	check_map(256 * SZ_1M, 4);
}

static void test_map_3g(void **state)
{
	check_map(3 * SZ_1G, 4);
}

static void test_map_3_5g(void **state)
{
	struct mem_map_entry map[MAP_MAX];
	struct guest_mem gm;

	check_map(3 * SZ_1G + 512 * SZ_1M, 5);
	assert_int_equal(gmem_init(&gm, 3 * SZ_1G + 512 * SZ_1M), 0);
	assert_int_equal(mem_map_build(&gm, map, MAP_MAX), 5);
	assert_int_equal(map[4].addr, GMEM_4G);
	assert_int_equal(map[4].size, 512 * SZ_1M);
	assert_int_equal(map[4].type, E820_TYPE_RAM);
	gmem_free(&gm);
}

static void test_map_5g(void **state)
{
	struct mem_map_entry map[MAP_MAX];
	struct guest_mem gm;

	check_map(5 * SZ_1G, 5);
	assert_int_equal(gmem_init(&gm, 5 * SZ_1G), 0);
	assert_int_equal(mem_map_build(&gm, map, MAP_MAX), 5);
	assert_int_equal(map[4].addr, GMEM_4G);
	assert_int_equal(map[4].size, 2 * SZ_1G);
	gmem_free(&gm);
}

static void test_map_nospc(void **state)
{
	struct mem_map_entry map[MAP_MAX];
	struct guest_mem gm;

	assert_int_equal(gmem_init(&gm, 256 * SZ_1M), 0);
	assert_int_equal(mem_map_build(&gm, map, 0), -ENOSPC);
	assert_int_equal(mem_map_build(&gm, map, 3), -ENOSPC);
	assert_int_equal(mem_map_build(&gm, map, 4), 4);
	gmem_free(&gm);

	assert_int_equal(gmem_init(&gm, 5 * SZ_1G), 0);
	assert_int_equal(mem_map_build(&gm, map, 4), -ENOSPC);
	assert_int_equal(mem_map_build(&gm, map, 5), 5);
	gmem_free(&gm);
}

static void test_initrd_place(void **state)
{
	const uint64_t ram = 256 * SZ_1M;
	struct guest_mem gm;
	uint64_t a;

	assert_int_equal(gmem_init(&gm, ram), 0);

	/* As high as possible, page aligned, inside RAM. */
	a = initrd_place(&gm, SZ_1M, 16 * SZ_1M, UINT32_MAX);
	assert_int_equal(a, ram - SZ_1M);
	a = initrd_place(&gm, 0x1234, 16 * SZ_1M, UINT32_MAX);
	assert_int_equal(a % 4096, 0);
	assert_true(a + 0x1234 <= ram);
	assert_true(a + 0x1234 > ram - 4096);

	/* max_addr is the last usable byte, as initrd_addr_max. */
	a = initrd_place(&gm, 0x1234, 16 * SZ_1M, 128 * SZ_1M - 1);
	assert_int_equal(a, 128 * SZ_1M - 0x2000);
	a = initrd_place(&gm, 4096, 16 * SZ_1M, 128 * SZ_1M - 1);
	assert_int_equal(a, 128 * SZ_1M - 4096);

	/* Exactly the room between the (rounded up) kernel end and RAM end. */
	a = initrd_place(&gm, ram - 16 * SZ_1M - 4096, 16 * SZ_1M + 1, UINT32_MAX);
	assert_int_equal(a, 16 * SZ_1M + 4096);
	assert_int_equal(initrd_place(&gm, ram - 16 * SZ_1M - 4095, 16 * SZ_1M + 1,
				      UINT32_MAX), 0);

	/* Does not fit: too big, above the kernel, below max, empty, wraps. */
	assert_int_equal(initrd_place(&gm, ram, 16 * SZ_1M, UINT32_MAX), 0);
	assert_int_equal(initrd_place(&gm, 10 * SZ_1M, 250 * SZ_1M, UINT32_MAX), 0);
	assert_int_equal(initrd_place(&gm, 10 * SZ_1M, 16 * SZ_1M, 20 * SZ_1M), 0);
	assert_int_equal(initrd_place(&gm, 0, 16 * SZ_1M, UINT32_MAX), 0);
	assert_int_equal(initrd_place(&gm, 4096, UINT64_MAX - 10, UINT64_MAX), 0);
	/* Never below 1 MiB, whatever kernel_end says. */
	a = initrd_place(&gm, ram - SZ_1M, 0, UINT64_MAX);
	assert_int_equal(a, SZ_1M);
	assert_int_equal(initrd_place(&gm, ram - SZ_1M + 4096, 0, UINT64_MAX), 0);
	gmem_free(&gm);
}

static void test_initrd_place_high_ram(void **state)
{
	struct guest_mem gm;
	uint64_t a;

	/* RAM above 4 GiB is not for the initrd: it stays below the hole. */
	assert_int_equal(gmem_init(&gm, 5 * SZ_1G), 0);
	a = initrd_place(&gm, 64 * SZ_1M, 32 * SZ_1M, UINT64_MAX);
	assert_int_equal(a, GMEM_32BIT_GAP_START - 64 * SZ_1M);
	a = initrd_place(&gm, 64 * SZ_1M, 32 * SZ_1M, 0x37ffffff);
	assert_int_equal(a, 0x38000000 - 64 * SZ_1M);
	gmem_free(&gm);
}

static uint64_t read_u64(const struct guest_mem *gm, uint64_t gpa)
{
	uint64_t v;

	assert_int_equal(gmem_read(gm, gpa, &v, sizeof(v)), 0);
	return v;
}

/* Walk the 4-level tables the way the MMU does; returns -1 if unmapped. */
static uint64_t translate(const struct guest_mem *gm, uint64_t va)
{
	const uint64_t addr_mask = 0x000ffffffffff000ULL;
	uint64_t e;

	e = read_u64(gm, BOOT_PML4_ADDR + ((va >> 39) & 511) * 8);
	if (!(e & 1))
		return UINT64_MAX;
	e = read_u64(gm, (e & addr_mask) + ((va >> 30) & 511) * 8);
	if (!(e & 1))
		return UINT64_MAX;
	assert_false(e & (1 << 7));	/* no 1 GiB pages */
	e = read_u64(gm, (e & addr_mask) + ((va >> 21) & 511) * 8);
	if (!(e & 1))
		return UINT64_MAX;
	assert_true(e & (1 << 7));	/* 2 MiB page */
	assert_true(e & (1 << 1));	/* writable */
	return (e & addr_mask & ~(0x200000ULL - 1)) | (va & (0x200000ULL - 1));
}

static void test_page_tables(void **state)
{
	static const uint64_t identity[] = {
		0x0, 0x1234567, KERNEL_LOAD_ADDR + 0x200, 0xbfffffff,
		IOAPIC_ADDR, LAPIC_ADDR, 0xfee00abc, 0xffffffff,
	};
	struct guest_mem gm;
	unsigned int i;

	assert_int_equal(gmem_init(&gm, 64 * SZ_1M), 0);
	/* Stale data where the tables go must not survive. */
	memset(gmem_ptr(&gm, BOOT_PML4_ADDR, 0x6000), 0xa5, 0x6000);
	assert_int_equal(boot_write_page_tables(&gm), 0);

	for (i = 0; i < ARRAY_SIZE(identity); i++)
		assert_int_equal(translate(&gm, identity[i]), identity[i]);
	assert_int_equal(translate(&gm, GMEM_4G), UINT64_MAX);
	assert_int_equal(translate(&gm, 1ULL << 39), UINT64_MAX);
	assert_int_equal(read_u64(&gm, BOOT_PML4_ADDR), BOOT_PDPT_ADDR | 3);
	assert_int_equal(read_u64(&gm, BOOT_PD_ADDR + 8), 0x200000 | 0x83);
	gmem_free(&gm);
}

static void test_page_tables_no_room(void **state)
{
	struct guest_mem gm;

	/* 32 KiB of RAM ends before BOOT_PML4_ADDR. */
	assert_int_equal(gmem_init(&gm, 0x8000), 0);
	assert_int_equal(boot_write_page_tables(&gm), -EFAULT);
	assert_int_equal(boot_write_gdt(&gm), 0);
	gmem_free(&gm);
}

static void test_gdt(void **state)
{
	struct guest_mem gm;
	uint64_t cs, ds;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(boot_write_gdt(&gm), 0);
	assert_int_equal(read_u64(&gm, BOOT_GDT_ADDR), 0);
	assert_int_equal(read_u64(&gm, BOOT_GDT_ADDR + 0x08), 0x00CF9B000000FFFFULL);
	assert_int_equal(read_u64(&gm, BOOT_GDT_ADDR + 0x10), 0x00AF9B000000FFFFULL);
	assert_int_equal(read_u64(&gm, BOOT_GDT_ADDR + 0x18), 0x00CF93000000FFFFULL);

	/* What the boot protocol needs of __BOOT_CS and __BOOT_DS. */
	cs = read_u64(&gm, BOOT_GDT_ADDR + BOOT_CS_SELECTOR);
	ds = read_u64(&gm, BOOT_GDT_ADDR + BOOT_DS_SELECTOR);
	assert_true(cs & (1ULL << 53));		/* L: 64-bit code */
	assert_false(cs & (1ULL << 54));	/* D must be 0 with L */
	assert_true(cs & (1ULL << 47));		/* present */
	assert_true(cs & (1ULL << 43));		/* code */
	assert_false(ds & (1ULL << 43));	/* data */
	assert_true(ds & (1ULL << 41));		/* writable */
	gmem_free(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_256m),
		cmocka_unit_test(test_map_3g),
		cmocka_unit_test(test_map_3_5g),
		cmocka_unit_test(test_map_5g),
		cmocka_unit_test(test_map_nospc),
		cmocka_unit_test(test_initrd_place),
		cmocka_unit_test(test_initrd_place_high_ram),
		cmocka_unit_test(test_page_tables),
		cmocka_unit_test(test_page_tables_no_room),
		cmocka_unit_test(test_gdt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
