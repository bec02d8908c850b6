// SPDX-License-Identifier: MIT
/* MP table: parsed back the way Linux's mpparse.c finds and reads it. */
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

struct parsed {
	unsigned int cpus, bsp, buses, ioapics, intsrc, lintsrc;
	unsigned int entries;
	uint8_t ioapic_id;
	uint8_t cpu_flags[256];
	/* Per IOAPIC pin: srcbus << 8 | srcbusirq, flags; -1 when none. */
	int pin_src[24];
	int pin_flags[24];
	char bus_isa, bus_pci;
};

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void parse(const struct guest_mem *gm, struct parsed *out)
{
	const uint8_t *bios = gmem_ptr(gm, BIOS_AREA_START, BIOS_AREA_END - BIOS_AREA_START);
	const uint8_t *mpf = NULL, *mpc, *p, *end;
	uint64_t off;
	int i;

	assert_non_null(bios);
	memset(out, 0, sizeof(*out));
	for (i = 0; i < 24; i++)
		out->pin_src[i] = out->pin_flags[i] = -1;

	/* Linux scans on 16-byte boundaries. */
	for (off = 0; off < BIOS_AREA_END - BIOS_AREA_START; off += 16)
		if (!memcmp(bios + off, "_MP_", 4)) {
			mpf = bios + off;
			break;
		}
	assert_non_null(mpf);
	assert_int_equal(mpf[8], 1);		/* length: 16 bytes */
	assert_int_equal(mpf[9], 4);		/* spec 1.4 */
	assert_int_equal(sum(mpf, 16), 0);
	assert_int_equal(mpf[11], 0);		/* config table present */

	off = le32(mpf + 4);
	assert_true(off >= BIOS_AREA_START && off < BIOS_AREA_END);
	mpc = gmem_ptr(gm, off, 44);
	assert_non_null(mpc);
	assert_memory_equal(mpc, "PCMP", 4);
	assert_non_null(gmem_ptr(gm, off, le16(mpc + 4)));
	assert_true(off + le16(mpc + 4) <= BIOS_AREA_END);
	assert_int_equal(sum(mpc, le16(mpc + 4)), 0);
	assert_int_equal(mpc[6], 4);
	assert_memory_equal(mpc + 8, "TINYVMM ", 8);
	assert_memory_equal(mpc + 16, "TINYVMM     ", 12);
	assert_int_equal(le32(mpc + 36), LAPIC_ADDR);

	p = mpc + 44;
	end = mpc + le16(mpc + 4);
	while (p < end) {
		out->entries++;
		switch (p[0]) {
		case 0:
			assert_int_equal(p[2], 0x14);
			assert_true(p[3] & 1);
			out->cpu_flags[p[1]] = p[3];
			out->cpus++;
			if (p[3] & 2)
				out->bsp++;
			p += 20;
			break;
		case 1:
			if (!memcmp(p + 2, "ISA   ", 6))
				out->bus_isa = p[1];
			else if (!memcmp(p + 2, "PCI   ", 6))
				out->bus_pci = p[1];
			else
				fail_msg("unknown bus type");
			out->buses++;
			p += 8;
			break;
		case 2:
			out->ioapic_id = p[1];
			assert_int_equal(p[2], 0x11);
			assert_int_equal(p[3] & 1, 1);
			assert_int_equal(le32(p + 4), IOAPIC_ADDR);
			out->ioapics++;
			p += 8;
			break;
		case 3:
			assert_int_equal(p[1], 0);	/* INT */
			assert_int_equal(p[6], out->ioapic_id);
			assert_true(p[7] < 24);
			assert_int_equal(out->pin_src[p[7]], -1);	/* one source a pin */
			out->pin_src[p[7]] = p[4] << 8 | p[5];
			out->pin_flags[p[7]] = le16(p + 2);
			out->intsrc++;
			p += 8;
			break;
		case 4:
			assert_int_equal(p[6], 0xff);
			/* ExtINT on LINT0, NMI on LINT1 */
			assert_int_equal(p[1], p[7] == 0 ? 3 : 1);
			out->lintsrc++;
			p += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u", p[0]);
		}
	}
	assert_ptr_equal(p, end);
	assert_int_equal(le16(mpc + 34), out->entries);	/* oemcount */
}

static const struct pci_irq two_irqs[] = {
	{ .slot = 1, .pin = 1, .gsi = 16 },
	{ .slot = 3, .pin = 2, .gsi = 17 },
};

static void check_cpus(unsigned int nr_cpus)
{
	struct guest_mem gm;
	struct parsed t;
	unsigned int i;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(mptable_write(&gm, nr_cpus, two_irqs, 2), 0);
	parse(&gm, &t);
	assert_int_equal(t.cpus, nr_cpus);
	assert_int_equal(t.bsp, 1);
	assert_int_equal(t.cpu_flags[0], 3);		/* enabled + BSP */
	for (i = 1; i < nr_cpus; i++)
		assert_int_equal(t.cpu_flags[i], 1);	/* enabled only */
	assert_int_equal(t.buses, 2);
	assert_int_equal(t.bus_pci, 0);
	assert_int_equal(t.bus_isa, 1);
	assert_int_equal(t.ioapics, 1);
	assert_int_equal(t.ioapic_id, nr_cpus);
	/* 16 ISA IRQs less the cascade (IRQ 2), plus the 2 PCI ones. */
	assert_int_equal(t.intsrc, 15 + 2);
	assert_int_equal(t.lintsrc, 2);
	assert_int_equal(t.entries, nr_cpus + 2 + 1 + 17 + 2);
	gmem_free(&gm);
}

static void test_one_cpu(void **state)
{
	check_cpus(1);
}

static void test_four_cpus(void **state)
{
	check_cpus(4);
}

static void test_max_cpus(void **state)
{
	check_cpus(254);
}

static void test_irq_routing(void **state)
{
	struct guest_mem gm;
	struct parsed t;
	int pin;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(mptable_write(&gm, 2, two_irqs, 2), 0);
	parse(&gm, &t);

	/*
	 * The PIT (ISA IRQ 0) is on pin 0, where KVM's default routing
	 * delivers it; pin 2 (the cascade) is unused.
	 */
	assert_int_equal(t.pin_src[0], 1 << 8 | 0);
	assert_int_equal(t.pin_src[2], -1);
	for (pin = 0; pin < 16; pin++) {
		if (pin == 2)
			continue;
		assert_int_equal(t.pin_src[pin], 1 << 8 | pin);
		assert_int_equal(t.pin_flags[pin], 0);
	}
	/* PCI: bus 0, (slot << 2) | (INTx - 1), active low, level. */
	assert_int_equal(t.pin_src[16], 0 << 8 | (1 << 2 | 0));
	assert_int_equal(t.pin_src[17], 0 << 8 | (3 << 2 | 1));
	assert_int_equal(t.pin_flags[16], 0x0f);
	assert_int_equal(t.pin_flags[17], 0x0f);
	gmem_free(&gm);
}

static void test_pci_on_isa_pin(void **state)
{
	/* A PCI device on pin 11 takes it from ISA IRQ 11. */
	static const struct pci_irq irq = { .slot = 2, .pin = 4, .gsi = 11 };
	struct guest_mem gm;
	struct parsed t;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(mptable_write(&gm, 1, &irq, 1), 0);
	parse(&gm, &t);
	assert_int_equal(t.intsrc, 15);
	assert_int_equal(t.pin_src[11], 0 << 8 | (2 << 2 | 3));
	assert_int_equal(t.pin_flags[11], 0x0f);
	gmem_free(&gm);
}

static void test_no_pci(void **state)
{
	struct guest_mem gm;
	struct parsed t;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(mptable_write(&gm, 1, NULL, 0), 0);
	parse(&gm, &t);
	assert_int_equal(t.intsrc, 15);
	gmem_free(&gm);
}

static void test_rejects(void **state)
{
	static const struct pci_irq bad_pin = { .slot = 1, .pin = 5, .gsi = 16 };
	static const struct pci_irq bad_gsi = { .slot = 1, .pin = 1, .gsi = 24 };
	struct guest_mem gm;

	assert_int_equal(gmem_init(&gm, 16 * SZ_1M), 0);
	assert_int_equal(mptable_write(&gm, 0, NULL, 0), -EINVAL);
	assert_int_equal(mptable_write(&gm, 255, NULL, 0), -EINVAL);
	assert_int_equal(mptable_write(&gm, 1, &bad_pin, 1), -EINVAL);
	assert_int_equal(mptable_write(&gm, 1, &bad_gsi, 1), -EINVAL);
	assert_int_equal(mptable_write(&gm, 1, NULL, 1), -EINVAL);
	/* Nothing was written. */
	assert_null(memmem(gmem_ptr(&gm, BIOS_AREA_START, 0x10000), 0x10000, "_MP_", 4));
	gmem_free(&gm);

	/* RAM that does not reach the BIOS area. */
	assert_int_equal(gmem_init(&gm, 512 * SZ_1K), 0);
	assert_int_equal(mptable_write(&gm, 1, NULL, 0), -EFAULT);
	gmem_free(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_four_cpus),
		cmocka_unit_test(test_max_cpus),
		cmocka_unit_test(test_irq_routing),
		cmocka_unit_test(test_pci_on_isa_pin),
		cmocka_unit_test(test_no_pci),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
