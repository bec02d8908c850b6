// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/io_bus.h"
#include "lib/util.h"
#include "pci/pci.h"
#include "tests/driver/capture.h"

/* Linux's arch/x86/pci/direct.c address encoding. */
#define PCI_CONF1_ADDRESS(bus, devfn, reg) \
	(0x80000000u | (((reg) & 0xf00u) << 16) | ((bus) << 16) | ((devfn) << 8) | ((reg) & 0xfcu))
#define DEVFN(slot, fn)		(((slot) << 3) | (fn))

#define VIRTIO_BAR_SIZE		64
#define MAX_MOVES		16

struct fake_bar {
	int reads, writes;
	uint16_t last_off;
	uint32_t last_val;
};

struct move {
	int bar;
	uint32_t old_base, new_base;
};

struct cfg_call {
	unsigned int slot, off, size;
	uint32_t val;
	uint32_t applied;	/* the dword at off & ~3 when the hook ran */
	bool locked;		/* the bus lock was held */
};

#define MAX_CFG_CALLS		8

struct fixture {
	struct io_bus pio;
	struct io_bus mmio;
	struct pci_bus bus;
	struct pci_dev blk;
	struct fake_bar fb;
	struct pci_dev extra;		/* outlives the test: teardown sees it */
	struct fake_bar extra_fb;
	struct move moves[MAX_MOVES];
	int nr_moves;
	/* setup_mem: slot 2, I/O BAR0, memory BAR1 (4 KiB) and BAR2 (16 bytes) */
	struct pci_dev mem;
	struct fake_bar mem_fb;
	struct cfg_call calls[MAX_CFG_CALLS];
	int nr_calls;
};

static uint32_t fake_read(void *opaque, uint16_t off, unsigned int size)
{
	struct fake_bar *fb = opaque;

	fb->reads++;
	fb->last_off = off;
	return 0xb0000000u | off;
}

static void fake_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct fake_bar *fb = opaque;

	fb->writes++;
	fb->last_off = off;
	fb->last_val = val;
}

static const struct io_ops fake_ops = { .read = fake_read, .write = fake_write };

static void record_move(struct pci_dev *d, int bar, uint32_t old_base, uint32_t new_base)
{
	struct fixture *f = d->owner;

	assert_true(f->nr_moves < MAX_MOVES);
	f->moves[f->nr_moves++] = (struct move) { bar, old_base, new_base };
}

static void assert_move(struct fixture *f, int i, int bar, uint32_t old_base, uint32_t new_base)
{
	assert_true(i < f->nr_moves);
	assert_int_equal(f->moves[i].bar, bar);
	assert_int_equal(f->moves[i].old_base, old_base);
	assert_int_equal(f->moves[i].new_base, new_base);
}

/* Port I/O as the guest does it, through the io_bus. */
static uint32_t in_port(struct io_bus *pio, uint16_t port, unsigned int size)
{
	uint32_t v = 0;

	io_bus_access(pio, port, false, &v, size);
	return v;
}

static void out_port(struct io_bus *pio, uint16_t port, unsigned int size, uint32_t val)
{
	io_bus_access(pio, port, true, &val, size);
}

static bool port_claimed(struct io_bus *pio, uint16_t port)
{
	uint8_t b;

	return io_bus_access(pio, port, false, &b, 1);
}

/* pci_conf1_read/pci_conf1_write from arch/x86/pci/direct.c. */
static uint32_t conf1_read(struct io_bus *pio, unsigned int bus, unsigned int devfn,
			   unsigned int reg, unsigned int len)
{
	out_port(pio, 0xcf8, 4, PCI_CONF1_ADDRESS(bus, devfn, reg));
	switch (len) {
	case 1:
		return in_port(pio, 0xcfc + (reg & 3), 1);
	case 2:
		return in_port(pio, 0xcfc + (reg & 2), 2);
	default:
		return in_port(pio, 0xcfc, 4);
	}
}

static void conf1_write(struct io_bus *pio, unsigned int bus, unsigned int devfn,
			unsigned int reg, unsigned int len, uint32_t val)
{
	out_port(pio, 0xcf8, 4, PCI_CONF1_ADDRESS(bus, devfn, reg));
	switch (len) {
	case 1:
		out_port(pio, 0xcfc + (reg & 3), 1, val);
		break;
	case 2:
		out_port(pio, 0xcfc + (reg & 2), 2, val);
		break;
	default:
		out_port(pio, 0xcfc, 4, val);
		break;
	}
}

/* pci_sanity_check() + pci_check_type1(), with no DMI year to shortcut it. */
static int linux_check_type1(struct io_bus *pio)
{
	uint32_t tmp;
	int works = 0, devfn;

	out_port(pio, 0xcfb, 1, 0x01);
	tmp = in_port(pio, 0xcf8, 4);
	out_port(pio, 0xcf8, 4, 0x80000000);
	if (in_port(pio, 0xcf8, 4) == 0x80000000) {
		for (devfn = 0; devfn < 0x100; devfn++) {
			uint32_t x = conf1_read(pio, 0, devfn, PCI_CLASS_DEVICE, 2);

			/* PCI_CLASS_BRIDGE_HOST, PCI_CLASS_DISPLAY_VGA */
			if (x == 0x0600 || x == 0x0300) {
				works = 1;
				break;
			}
			x = conf1_read(pio, 0, devfn, PCI_VENDOR_ID, 2);
			if (x == 0x8086 || x == 0x0e11) {
				works = 1;
				break;
			}
		}
	}
	out_port(pio, 0xcf8, 4, tmp);
	return works;
}

/* pci_check_type2(): must not find mechanism #2 behind our ports. */
static int linux_check_type2(struct io_bus *pio)
{
	out_port(pio, 0xcfb, 1, 0x00);
	out_port(pio, 0xcf8, 1, 0x00);
	out_port(pio, 0xcfa, 1, 0x00);
	return in_port(pio, 0xcf8, 1) == 0x00 && in_port(pio, 0xcfa, 1) == 0x00;
}

/* pci_size() from drivers/pci/probe.c. */
static uint64_t linux_pci_size(uint64_t base, uint64_t maxbase, uint64_t mask)
{
	uint64_t size = mask & maxbase;

	if (!size)
		return 0;
	size = size & ~(size - 1);
	if (base == maxbase && ((base | (size - 1)) & mask) != mask)
		return 0;
	return size;
}

/*
 * The 32-bit part of __pci_read_base(): l is the BAR, sz what it read
 * after all ones were written.  x86 IO_SPACE_LIMIT is 0xffff.  Returns
 * the size, 0 where Linux gives up on the BAR.
 */
static uint64_t linux_bar_size(uint32_t l, uint32_t sz, bool *is_io)
{
	uint64_t l64, sz64, mask64;

	if (sz == 0xffffffffu)
		sz = 0;
	if (l == 0xffffffffu)
		l = 0;
	*is_io = l & 1;
	if (*is_io) {
		l64 = l & ~0x3u;
		sz64 = sz & ~0x3u;
		mask64 = ~0x3u & 0xffffu;
	} else {
		l64 = l & ~0xfu;
		sz64 = sz & ~0xfu;
		mask64 = ~0xfu;
	}
	if (!sz64)
		return 0;
	return linux_pci_size(l64, sz64, mask64);
}

/* __pci_size_bars(): save, all ones, read, restore. */
static uint32_t linux_size_bar(struct io_bus *pio, unsigned int slot, int n)
{
	unsigned int pos = PCI_BASE_ADDRESS_0 + 4 * n;
	uint32_t orig, sz;

	orig = conf1_read(pio, 0, DEVFN(slot, 0), pos, 4);
	conf1_write(pio, 0, DEVFN(slot, 0), pos, 4, 0xffffffffu);
	sz = conf1_read(pio, 0, DEVFN(slot, 0), pos, 4);
	conf1_write(pio, 0, DEVFN(slot, 0), pos, 4, orig);
	return sz;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	io_bus_init(&f->pio);
	io_bus_init(&f->mmio);
	assert_int_equal(pci_bus_init(&f->bus, &f->pio, &f->mmio), 0);
	pci_dev_init(&f->blk, "virtio-blk", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
	assert_int_equal(pci_dev_add_io_bar(&f->blk, 0, VIRTIO_BAR_SIZE, &fake_ops, &f->fb), 0);
	f->blk.owner = f;
	f->blk.bar_moved = record_move;
	assert_int_equal(pci_bus_add(&f->bus, &f->blk, 1), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_bus_destroy(&f->bus);
	assert_int_equal(f->mmio.nr, 0);
	io_bus_destroy(&f->mmio);
	io_bus_destroy(&f->pio);
	free(f);
	return 0;
}

static void test_add_places_bar_and_gsi(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_BASE_ADDRESS_0, 4), PCI_IO_BASE | 1);
	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_COMMAND, 2), PCI_COMMAND_IO);
	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_INTERRUPT_LINE, 1), PCI_IRQ_FIRST_GSI);
	assert_int_equal(f->blk.gsi, PCI_IRQ_FIRST_GSI);
	assert_true(f->blk.bar[0].mapped);
	assert_int_equal(f->blk.bar[0].mapped_base, PCI_IO_BASE);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, 0, PCI_IO_BASE);

	/* The BAR reaches the device ops with the offset inside it. */
	assert_int_equal(in_port(&f->pio, PCI_IO_BASE + 0x12, 2), 0xb0000012u & 0xffff);
	out_port(&f->pio, PCI_IO_BASE + 0x10, 2, 0);
	assert_int_equal(f->fb.writes, 1);
	assert_int_equal(f->fb.last_off, 0x10);
}

static void test_latch_dword_only(void **state)
{
	struct fixture *f = *state;

	out_port(&f->pio, 0xcf8, 4, 0x80001237);
	/* Bits 1:0 are not part of the address. */
	assert_int_equal(in_port(&f->pio, 0xcf8, 4), 0x80001234);

	out_port(&f->pio, 0xcfb, 1, 0x01);
	out_port(&f->pio, 0xcf8, 1, 0x00);
	out_port(&f->pio, 0xcfa, 2, 0x0000);
	out_port(&f->pio, 0xcf9, 1, 0x06);
	assert_int_equal(in_port(&f->pio, 0xcf8, 4), 0x80001234);

	assert_int_equal(in_port(&f->pio, 0xcf8, 1), 0xff);
	assert_int_equal(in_port(&f->pio, 0xcfb, 1), 0xff);
	assert_int_equal(in_port(&f->pio, 0xcf8, 2), 0xffff);
	assert_int_equal(in_port(&f->pio, 0xcfa, 2), 0xffff);
}

static void test_linux_check_type1(void **state)
{
	struct fixture *f = *state;

	out_port(&f->pio, 0xcf8, 4, 0x8000080c);
	assert_int_equal(linux_check_type1(&f->pio), 1);
	/* The probe puts the latch back. */
	assert_int_equal(in_port(&f->pio, 0xcf8, 4), 0x8000080c);
	assert_int_equal(linux_check_type2(&f->pio), 0);
	assert_int_equal(in_port(&f->pio, 0xcf8, 4), 0x8000080c);
}

static void test_host_bridge(void **state)
{
	struct fixture *f = *state;
	int n;

	assert_int_equal(conf1_read(&f->pio, 0, 0, PCI_VENDOR_ID, 4), 0x12378086);
	assert_int_equal(conf1_read(&f->pio, 0, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	assert_int_equal(conf1_read(&f->pio, 0, 0, PCI_CLASS_PROG, 1), 0x00);
	assert_int_equal(conf1_read(&f->pio, 0, 0, PCI_HEADER_TYPE, 1), 0x00);
	assert_int_equal(conf1_read(&f->pio, 0, 0, PCI_INTERRUPT_PIN, 1), 0);
	for (n = 0; n < PCI_NUM_BARS; n++)
		assert_int_equal(linux_size_bar(&f->pio, 0, n), 0);
}

static void test_virtio_identity_widths(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_VENDOR_ID, 4), 0x10011af4);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_DEVICE_ID, 2), 0x1001);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), 0, 1), 0xf4);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), 1, 1), 0x1a);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), 2, 1), 0x01);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), 3, 1), 0x10);

	/* Revision 0 (the legacy virtio ABI version) under class 0x010000. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_REVISION_ID, 4), 0x01000000);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_REVISION_ID, 1), 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_CLASS_DEVICE, 2), 0x0100);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00021af4);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_SUBSYSTEM_ID, 2), 2);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_INTERRUPT_PIN, 1), 1);
	/* No capabilities: status bit 4 clear, no list pointer. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_STATUS, 2) & 0x10, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_CAPABILITY_LIST, 1), 0);

	/* An odd word inside the dword still picks the right bytes. */
	out_port(pio, 0xcf8, 4, PCI_CONF1_ADDRESS(0, DEVFN(1, 0), 0));
	assert_int_equal(in_port(pio, 0xcfd, 2), 0x011a);
	assert_int_equal(in_port(pio, 0xcfe, 2), 0x1001);
	assert_int_equal(in_port(pio, 0xcff, 1), 0x10);

	/* The raw helper agrees with the ports. */
	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_VENDOR_ID, 4), 0x10011af4);
	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_DEVICE_ID, 2), 0x1001);
}

static void test_absent_reads_ones(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	/* Empty slot, all widths. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(5, 0), PCI_VENDOR_ID, 4), 0xffffffffu);
	assert_int_equal(conf1_read(pio, 0, DEVFN(5, 0), PCI_VENDOR_ID, 2), 0xffff);
	assert_int_equal(conf1_read(pio, 0, DEVFN(5, 0), PCI_HEADER_TYPE, 1), 0xff);
	assert_int_equal(pci_cfg_read(&f->bus, 5, PCI_VENDOR_ID, 2), 0xffff);
	assert_int_equal(pci_cfg_read(&f->bus, 40, PCI_VENDOR_ID, 4), 0xffffffffu);

	/* Function 1 of a present device, and bus 1. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 1), PCI_VENDOR_ID, 4), 0xffffffffu);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 7), PCI_VENDOR_ID, 2), 0xffff);
	assert_int_equal(conf1_read(pio, 1, DEVFN(1, 0), PCI_VENDOR_ID, 4), 0xffffffffu);
	assert_int_equal(conf1_read(pio, 1, DEVFN(0, 0), PCI_VENDOR_ID, 4), 0xffffffffu);

	/* Enable bit clear: the data window is dead. */
	out_port(pio, 0xcf8, 4, DEVFN(1, 0) << 8);
	assert_int_equal(in_port(pio, 0xcfc, 4), 0xffffffffu);

	/* Writes there are dropped, not redirected to function 0. */
	conf1_write(pio, 0, DEVFN(1, 1), PCI_COMMAND, 2, 0);
	conf1_write(pio, 1, DEVFN(1, 0), PCI_COMMAND, 2, 0);
	out_port(pio, 0xcf8, 4, (DEVFN(1, 0) << 8) | PCI_COMMAND);
	out_port(pio, 0xcfc, 2, 0);
	assert_int_equal(pci_cfg_read(&f->bus, 1, PCI_COMMAND, 2), PCI_COMMAND_IO);
	assert_true(f->blk.bar[0].mapped);
}

static void test_read_only_fields(void **state)
{
	struct fixture *f = *state;
	uint32_t before[PCI_CFG_SIZE / 4];
	unsigned int off;
	uint32_t pattern[] = { 0xffffffffu, 0, 0x5a5aa5a5u };
	unsigned int i;

	for (off = 0; off < PCI_CFG_SIZE; off += 4)
		before[off / 4] = conf1_read(&f->pio, 0, DEVFN(1, 0), off, 4);

	for (i = 0; i < sizeof(pattern) / sizeof(pattern[0]); i++) {
		for (off = 0; off < PCI_CFG_SIZE; off += 4) {
			/* The writable ones are tested on their own. */
			if (off == PCI_COMMAND || off == PCI_BASE_ADDRESS_0 ||
			    off == PCI_INTERRUPT_LINE)
				continue;
			conf1_write(&f->pio, 0, DEVFN(1, 0), off, 4, pattern[i]);
			conf1_write(&f->pio, 0, DEVFN(1, 0), off + 1, 1, pattern[i]);
			conf1_write(&f->pio, 0, DEVFN(1, 0), off + 2, 2, pattern[i]);
		}
		for (off = 0; off < PCI_CFG_SIZE; off += 4) {
			if (off == PCI_COMMAND || off == PCI_BASE_ADDRESS_0 ||
			    off == PCI_INTERRUPT_LINE)
				continue;
			assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), off, 4),
					 before[off / 4]);
		}
	}

	/* Status is the upper half of the command dword. */
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_STATUS, 2, 0xffff);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_STATUS, 2), before[1] >> 16);

	/* Unused BARs read 0 and stay 0. */
	for (off = PCI_BASE_ADDRESS_0 + 4; off < PCI_BASE_ADDRESS_0 + 24; off += 4)
		assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), off, 4), 0);

	/* Nor does the host bridge change identity. */
	pci_cfg_write(&f->bus, 0, PCI_VENDOR_ID, 4, 0);
	pci_cfg_write(&f->bus, 0, PCI_CLASS_PROG, 1, 0x55);
	assert_int_equal(pci_cfg_read(&f->bus, 0, PCI_VENDOR_ID, 4), 0x12378086);
	assert_int_equal(pci_cfg_read(&f->bus, 0, PCI_REVISION_ID, 4), 0x06000000);
}

static void test_command_mask(void **state)
{
	struct fixture *f = *state;

	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, 0xffff);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 2), 0x0007);
	/* Dword writes reach the command half and leave status alone. */
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 4, 0xffff0000u);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 4), 0);
	/* The high byte alone: INTx disable is not implemented, nothing sticks. */
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND + 1, 1, 0xff);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 2), 0);
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 1,
		    PCI_COMMAND_IO | PCI_COMMAND_MASTER | 0xf0);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_COMMAND, 2),
			 PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	assert_true(f->blk.bar[0].mapped);
}

static void test_interrupt_line_and_pin(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_LINE, 1), 16);
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_LINE, 1, 0x0b);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_LINE, 1), 0x0b);

	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_PIN, 1, 0x04);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_PIN, 1), 1);

	/* Dword at 0x3c: line changes; pin, min_gnt, max_lat do not. */
	conf1_write(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_LINE, 4, 0xffffff22u);
	assert_int_equal(conf1_read(&f->pio, 0, DEVFN(1, 0), PCI_INTERRUPT_LINE, 4), 0x0122);
	/* The line register is scratch: the GSI the bus assigned stays. */
	assert_int_equal(f->blk.gsi, 16);
}

/* pci_read_bases(): decode off around the sizing, as Linux does it. */
static void test_bar_sizing_linux_decode_off(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	uint32_t sizes[PCI_NUM_BARS], orig_cmd;
	bool is_io;
	int n;

	f->nr_moves = 0;
	orig_cmd = conf1_read(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2);
	assert_true(orig_cmd & PCI_COMMAND_IO);
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, orig_cmd & ~0x3u);
	assert_false(port_claimed(pio, PCI_IO_BASE));
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0);

	for (n = 0; n < PCI_NUM_BARS; n++)
		sizes[n] = linux_size_bar(pio, 1, n);
	/* Nothing was decoded while the BARs held all ones. */
	assert_int_equal(f->nr_moves, 1);
	assert_int_equal(pio->nr, 1);

	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, orig_cmd);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 0, 0, PCI_IO_BASE);
	assert_true(port_claimed(pio, PCI_IO_BASE));

	/* Upper 16 bits read 0 (16-bit decoder), size bits 0, bit 0 = I/O. */
	assert_int_equal(sizes[0], 0x0000ffc1);
	assert_int_equal(linux_bar_size(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4),
					sizes[0], &is_io), VIRTIO_BAR_SIZE);
	assert_true(is_io);
	/* Also what a driver's (~(sz & mask) & 0xffff) + 1 gives. */
	assert_int_equal((~(sizes[0] & PCI_BASE_ADDRESS_IO_MASK) & 0xffff) + 1, VIRTIO_BAR_SIZE);
	for (n = 1; n < PCI_NUM_BARS; n++) {
		assert_int_equal(sizes[n], 0);
		assert_int_equal(linux_bar_size(0, sizes[n], &is_io), 0);
	}
	/* The restore put the address back. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), PCI_IO_BASE | 1);
}

/*
 * Sizing with decode left on (mmio_always_on, other guests): the BAR
 * leaves its address while it holds all ones, sits at the top of the
 * 64K space as a 16-bit decoder would, and comes back on restore.
 */
static void test_bar_sizing_decode_on(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	unsigned int pos = PCI_BASE_ADDRESS_0;
	uint32_t orig, sz;
	bool is_io;

	f->nr_moves = 0;
	orig = conf1_read(pio, 0, DEVFN(1, 0), pos, 4);
	conf1_write(pio, 0, DEVFN(1, 0), pos, 4, 0xffffffffu);
	sz = conf1_read(pio, 0, DEVFN(1, 0), pos, 4);
	assert_false(port_claimed(pio, PCI_IO_BASE));
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0x10000 - VIRTIO_BAR_SIZE);
	assert_int_equal(f->blk.bar[0].mapped_base, 0x10000 - VIRTIO_BAR_SIZE);

	conf1_write(pio, 0, DEVFN(1, 0), pos, 4, orig);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 0, 0x10000 - VIRTIO_BAR_SIZE, PCI_IO_BASE);
	assert_true(port_claimed(pio, PCI_IO_BASE));
	assert_false(port_claimed(pio, 0xffff));

	assert_int_equal(sz, 0x0000ffc1);
	assert_int_equal(linux_bar_size(orig, sz, &is_io), VIRTIO_BAR_SIZE);
}

static void test_bar_sizing_bytewise(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	unsigned int pos = PCI_BASE_ADDRESS_0, i;
	uint32_t orig, sz;
	bool is_io;

	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, 0);
	orig = conf1_read(pio, 0, DEVFN(1, 0), pos, 4);

	for (i = 0; i < 4; i++)
		conf1_write(pio, 0, DEVFN(1, 0), pos + i, 1, 0xff);
	sz = conf1_read(pio, 0, DEVFN(1, 0), pos, 4);
	assert_int_equal(sz, 0x0000ffc1);
	assert_int_equal(linux_bar_size(orig, sz, &is_io), VIRTIO_BAR_SIZE);
	/* Byte reads of the same register agree. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos, 1), 0xc1);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos + 1, 1), 0xff);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos + 2, 1), 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos + 3, 1), 0);

	conf1_write(pio, 0, DEVFN(1, 0), pos, 4, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos, 4), 1);
	conf1_write(pio, 0, DEVFN(1, 0), pos, 2, 0xffff);
	conf1_write(pio, 0, DEVFN(1, 0), pos + 2, 2, 0xffff);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos, 4), sz);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos + 2, 2), 0);

	conf1_write(pio, 0, DEVFN(1, 0), pos, 4, orig);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), pos, 4), orig);
	assert_false(f->blk.bar[0].mapped);
}

/* Every legal size: Linux's arithmetic recovers it; the BAR is aligned. */
static void test_bar_sizes_all(void **state)
{
	uint32_t size;

	for (size = 4; size <= 256; size <<= 1) {
		struct io_bus pio;
		struct pci_bus bus;
		struct pci_dev d, pad;
		struct fake_bar fb = { 0 };
		uint32_t l, sz;
		bool is_io;

		io_bus_init(&pio);
		assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
		/* A 4-byte BAR first, so that alignment has work to do. */
		pci_dev_init(&pad, "pad", 0x1234, 0x5678, 0, 0xff0000, 0, 0, false);
		assert_int_equal(pci_dev_add_io_bar(&pad, 0, 4, &fake_ops, &fb), 0);
		assert_int_equal(pci_bus_add(&bus, &pad, 1), 0);
		pci_dev_init(&d, "d", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, false);
		assert_int_equal(pci_dev_add_io_bar(&d, 3, size, &fake_ops, &fb), 0);
		assert_int_equal(pci_bus_add(&bus, &d, 2), 0);

		l = pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 12, 4);
		assert_int_equal(l & 1, 1);
		assert_int_equal((l & ~3u) % size, 0);
		assert_true((l & ~3u) >= PCI_IO_BASE + 4);
		pci_cfg_write(&bus, 2, PCI_COMMAND, 2, 0);
		pci_cfg_write(&bus, 2, PCI_BASE_ADDRESS_0 + 12, 4, 0xffffffffu);
		sz = pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 12, 4);
		pci_cfg_write(&bus, 2, PCI_BASE_ADDRESS_0 + 12, 4, l);
		assert_int_equal(sz, (~(size - 1) & 0xffff) | 1);
		assert_int_equal(linux_bar_size(l, sz, &is_io), size);
		assert_true(is_io);

		pci_bus_destroy(&bus);
		assert_int_equal(pio.nr, 0);
		io_bus_destroy(&pio);
	}
}

static void test_bar_move(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0xd000);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 0xd001);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0xd000);

	f->fb.reads = 0;
	assert_false(port_claimed(pio, PCI_IO_BASE + 4));
	assert_int_equal(f->fb.reads, 0);
	assert_int_equal(in_port(pio, 0xd004, 4), 0xb0000004u);
	assert_int_equal(f->fb.reads, 1);
	assert_int_equal(f->fb.last_off, 4);
	out_port(pio, 0xd000 + VIRTIO_BAR_SIZE - 1, 1, 0x42);
	assert_int_equal(f->fb.last_off, VIRTIO_BAR_SIZE - 1);
	assert_int_equal(f->fb.last_val, 0x42);
	/* One past the end is not the device's. */
	assert_false(port_claimed(pio, 0xd000 + VIRTIO_BAR_SIZE));

	/* Low bits below the size are not address bits: no move. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0xd03e);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 0xd001);
	assert_int_equal(f->nr_moves, 1);

	/* A byte write to the high address byte moves it too. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0 + 1, 1, 0xe0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 0xe001);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 0, 0xd000, 0xe000);
	assert_false(port_claimed(pio, 0xd000));
	assert_true(port_claimed(pio, 0xe000));

	/* The raw helper has the same side effects. */
	pci_cfg_write(&f->bus, 1, PCI_BASE_ADDRESS_0, 4, 0xc100);
	assert_int_equal(f->nr_moves, 3);
	assert_move(f, 2, 0, 0xe000, 0xc100);
	assert_true(port_claimed(pio, 0xc100));
	assert_int_equal(f->blk.bar[0].mapped_base, 0xc100);
}

static void test_decode_disable_unmaps(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	assert_false(f->blk.bar[0].mapped);
	assert_false(port_claimed(pio, PCI_IO_BASE));
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0);

	/* Moving a BAR while decode is off maps nothing. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0xd000);
	assert_false(port_claimed(pio, 0xd000));
	assert_int_equal(f->nr_moves, 1);

	/* Memory decode is not I/O decode. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_false(port_claimed(pio, 0xd000));
	assert_int_equal(f->nr_moves, 1);

	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	assert_true(port_claimed(pio, 0xd000));
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 0, 0, 0xd000);

	/* Rewriting the same command is no move. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	assert_int_equal(f->nr_moves, 2);
}

static void test_bar_outside_64k_unmapped(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	f->nr_moves = 0;
	/* Address bits above 15 do not exist: 0x10000 reads back as 0. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0x10000);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 1);
	assert_false(f->blk.bar[0].mapped);
	assert_false(port_claimed(pio, PCI_IO_BASE));
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0);

	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0xffff0000u);
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 1);
	assert_false(f->blk.bar[0].mapped);
	assert_int_equal(pio->nr, 1);

	/* The last slot that fits is fine. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0x10000 - VIRTIO_BAR_SIZE);
	assert_true(f->blk.bar[0].mapped);
	assert_true(port_claimed(pio, 0xffff));
	assert_int_equal(f->nr_moves, 2);
}

static void test_overlap_leaves_unmapped(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	struct fake_bar other = { 0 };

	assert_int_equal(io_bus_register(pio, 0xd010, 8, &fake_ops, &other, "other"), 0);
	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4, 0xd000);
	assert_false(f->blk.bar[0].mapped);
	assert_true(f->blk.bar[0].warned);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 0, PCI_IO_BASE, 0);
	/* The register still says where the guest put it. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(1, 0), PCI_BASE_ADDRESS_0, 4), 0xd001);
	assert_false(port_claimed(pio, 0xd000));
	assert_false(port_claimed(pio, PCI_IO_BASE));
	in_port(pio, 0xd010, 1);
	assert_int_equal(other.reads, 1);
	assert_int_equal(f->fb.reads, 0);

	/* Retried on the next command write, still failing: no callback. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_IO);
	assert_int_equal(f->nr_moves, 1);

	/* Once the conflict is gone, the next write maps it. */
	assert_int_equal(io_bus_unregister(pio, 0xd010, &other), 0);
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_IO);
	assert_true(f->blk.bar[0].mapped);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 0, 0, 0xd000);
}

static void test_add_errors(void **state)
{
	struct fixture *f = *state;
	struct pci_dev *d2 = &f->extra;
	struct fake_bar *fb = &f->extra_fb;

	pci_dev_init(d2, "d2", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
	assert_int_equal(pci_dev_add_io_bar(d2, 0, 32, &fake_ops, fb), 0);

	assert_int_equal(pci_bus_add(&f->bus, d2, 1), -EBUSY);
	assert_int_equal(pci_bus_add(&f->bus, d2, 0), -EBUSY);
	assert_int_equal(pci_bus_add(&f->bus, d2, 32), -EINVAL);
	/* The same device twice. */
	assert_int_equal(pci_bus_add(&f->bus, &f->blk, 2), -EBUSY);
	assert_int_equal(f->bus.next_gsi, 17);
	assert_int_equal(f->bus.io_next, PCI_IO_BASE + VIRTIO_BAR_SIZE);
	assert_null(d2->bus);
	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_VENDOR_ID, 2), 0xffff);

	assert_int_equal(pci_bus_add(&f->bus, d2, 2), 0);
	assert_int_equal(d2->gsi, 17);
	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_BASE_ADDRESS_0, 4),
			 (PCI_IO_BASE + VIRTIO_BAR_SIZE) | 1);
	/* BARs are declared before the add, not after. */
	assert_int_equal(pci_dev_add_io_bar(d2, 1, 32, &fake_ops, fb), -EBUSY);
}

static void test_add_io_bar_checks(void **state)
{
	struct pci_dev d;
	struct fake_bar fb;

	pci_dev_init(&d, "d", 1, 2, 0, 0, 0, 0, false);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 2, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 48, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 512, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, 6, 16, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, -1, 16, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 16, NULL, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_io_bar(&d, 5, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_io_bar(&d, 5, 16, &fake_ops, &fb), -EBUSY);
	assert_int_equal(d.cfg[PCI_BASE_ADDRESS_0 + 20], 1);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 20], 0xf0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 21], 0xff);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 22], 0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 23], 0);
}

/* A BAR the io_bus refuses fails the add and leaves no trace. */
static void test_add_register_failure_rolls_back(void **state)
{
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev d;
	struct fake_bar fb = { 0 }, squatter = { 0 };

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	assert_int_equal(io_bus_register(&pio, PCI_IO_BASE + 8, 1, &fake_ops, &squatter, "sq"), 0);
	pci_dev_init(&d, "d", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 16, &fake_ops, &fb), 0);

	assert_int_equal(pci_bus_add(&bus, &d, 3), -EBUSY);
	assert_null(bus.dev[3]);
	assert_null(d.bus);
	assert_int_equal(d.gsi, 0);
	assert_false(d.bar[0].mapped);
	assert_int_equal(bus.io_next, PCI_IO_BASE);
	assert_int_equal(bus.next_gsi, PCI_IRQ_FIRST_GSI);
	assert_int_equal(d.cfg[PCI_BASE_ADDRESS_0], 1);
	assert_int_equal(d.cfg[PCI_COMMAND], 0);
	assert_int_equal(d.cfg[PCI_INTERRUPT_LINE], 0);
	assert_int_equal(pio.nr, 2);

	io_bus_unregister(&pio, PCI_IO_BASE + 8, &squatter);
	assert_int_equal(pci_bus_add(&bus, &d, 3), 0);
	assert_int_equal(d.gsi, PCI_IRQ_FIRST_GSI);
	assert_true(d.bar[0].mapped);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
}

static void test_gsi_assignment(void **state)
{
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev d[10];
	struct fake_bar fb = { 0 };
	unsigned int i;

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	for (i = 0; i < 9; i++) {
		pci_dev_init(&d[i], "d", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
		assert_int_equal(pci_dev_add_io_bar(&d[i], 0, 32, &fake_ops, &fb), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pci_bus_add(&bus, &d[i], i + 1), 0);
		assert_int_equal(d[i].gsi, 16 + i);
		assert_int_equal(pci_cfg_read(&bus, i + 1, PCI_INTERRUPT_LINE, 1), 16 + i);
	}
	assert_int_equal(pci_bus_add(&bus, &d[8], 9), -ENOSPC);
	assert_int_equal(pci_cfg_read(&bus, 9, PCI_VENDOR_ID, 2), 0xffff);
	assert_int_equal(bus.io_next, PCI_IO_BASE + 8 * 32);

	/* A device without INTx needs no GSI. */
	pci_dev_init(&d[9], "nointx", 0x1234, 0x1111, 0, 0xff0000, 0, 0, false);
	assert_int_equal(pci_dev_add_io_bar(&d[9], 0, 32, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &d[9], 10), 0);
	assert_int_equal(d[9].gsi, 0);
	assert_int_equal(pci_cfg_read(&bus, 10, PCI_INTERRUPT_LINE, 2), 0);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
}

static void test_bus_irqs(void **state)
{
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev a, b, c;
	struct pci_irq irqs[4];

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	pci_dev_init(&a, "a", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
	pci_dev_init(&b, "b", 0x1af4, 0x1000, 0, 0x020000, 0x1af4, 1, false);
	pci_dev_init(&c, "c", 0x1af4, 0x1001, 0, 0x010000, 0x1af4, 2, true);
	assert_int_equal(pci_bus_add(&bus, &a, 2), 0);
	assert_int_equal(pci_bus_add(&bus, &b, 3), 0);
	assert_int_equal(pci_bus_add(&bus, &c, 5), 0);

	memset(irqs, 0xee, sizeof(irqs));
	assert_int_equal(pci_bus_irqs(&bus, irqs, 4), 2);
	assert_int_equal(irqs[0].slot, 2);
	assert_int_equal(irqs[0].pin, 1);
	assert_int_equal(irqs[0].gsi, 16);
	assert_int_equal(irqs[1].slot, 5);
	assert_int_equal(irqs[1].pin, 1);
	assert_int_equal(irqs[1].gsi, 17);
	assert_int_equal(irqs[2].slot, 0xee);

	memset(irqs, 0xee, sizeof(irqs));
	assert_int_equal(pci_bus_irqs(&bus, irqs, 1), 1);
	assert_int_equal(irqs[0].slot, 2);
	assert_int_equal(irqs[1].slot, 0xee);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
}

static void test_io_space_exhaustion(void **state)
{
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev small, mixed, big[11];
	struct fake_bar fb = { 0 };
	unsigned int i;
	int n;

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);

	pci_dev_init(&small, "small", 1, 1, 0, 0xff0000, 0, 0, false);
	assert_int_equal(pci_dev_add_io_bar(&small, 0, 4, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &small, 1), 0);
	pci_dev_init(&mixed, "mixed", 1, 2, 0, 0xff0000, 0, 0, false);
	assert_int_equal(pci_dev_add_io_bar(&mixed, 0, 64, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_io_bar(&mixed, 2, 256, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &mixed, 2), 0);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0, 4), 0xc001);
	assert_int_equal(pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0, 4), 0xc041);
	assert_int_equal(pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 4, 4), 0);
	assert_int_equal(pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 8, 4), 0xc101);

	/* 0xc200-0xffff holds 62 BARs of 256: ten devices of six. */
	for (i = 0; i < 11; i++) {
		pci_dev_init(&big[i], "big", 1, 3, 0, 0xff0000, 0, 0, false);
		for (n = 0; n < PCI_NUM_BARS; n++)
			assert_int_equal(pci_dev_add_io_bar(&big[i], n, 256, &fake_ops, &fb), 0);
	}
	for (i = 0; i < 10; i++)
		assert_int_equal(pci_bus_add(&bus, &big[i], 3 + i), 0);
	assert_int_equal(pci_cfg_read(&bus, 12, PCI_BASE_ADDRESS_0 + 20, 4), 0xfd01);
	assert_int_equal(bus.io_next, 0xfe00);
	assert_int_equal(pci_bus_add(&bus, &big[10], 13), -ENOSPC);
	assert_int_equal(bus.io_next, 0xfe00);
	assert_null(bus.dev[13]);
	assert_int_equal(pio.nr, 1 + 1 + 2 + 60);

	pci_bus_destroy(&bus);
	assert_int_equal(pio.nr, 0);
	io_bus_destroy(&pio);
}

static void test_destroy_unregisters(void **state)
{
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev d;
	struct fake_bar fb = { 0 };

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	/* The config ports are taken: a second bus cannot have them. */
	assert_int_equal(io_bus_register(&pio, 0xcfc, 4, &fake_ops, &fb, "x"), -EBUSY);
	pci_dev_init(&d, "d", 1, 2, 0, 0, 0, 0, true);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_io_bar(&d, 1, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &d, 4), 0);
	assert_int_equal(pio.nr, 3);

	pci_bus_destroy(&bus);
	assert_int_equal(pio.nr, 0);
	assert_false(d.bar[0].mapped);
	assert_false(d.bar[1].mapped);
	assert_false(port_claimed(&pio, 0xcf8));
	assert_false(port_claimed(&pio, PCI_IO_BASE));
	io_bus_destroy(&pio);
}

/*
 * vCPUs moving the BAR and toggling decode concurrently: bar_moved
 * reports form one unbroken chain (each old is the previous new) and the
 * final mapping matches the registers.
 */
struct race {
	struct io_bus pio;
	struct io_bus mmio;
	bool mem;			/* a memory BAR, else an I/O one */
	struct pci_bus bus;
	struct pci_dev d;
	uint32_t current;
	int moves;
	bool broken;
};

static void race_moved(struct pci_dev *d, int bar, uint32_t old_base, uint32_t new_base)
{
	struct race *r = d->owner;

	if (old_base != r->current || old_base == new_base)
		r->broken = true;
	/* Widen the window in which an unserialised mover would interleave. */
	sched_yield();
	r->current = new_base;
	r->moves++;
}

/* Stateless: several threads reach it at once. */
static uint32_t quiet_read(void *opaque, uint16_t off, unsigned int size)
{
	return 0x5a;
}

static const struct io_ops quiet_ops = { .read = quiet_read };

struct race_thread {
	struct race *r;
	unsigned int seed;
};

static void *race_worker(void *arg)
{
	struct race_thread *t = arg;
	struct race *r = t->r;
	uint16_t decode = r->mem ? PCI_COMMAND_MEMORY : PCI_COMMAND_IO;
	int i;

	for (i = 0; i < 2000; i++) {
		unsigned int x = rand_r(&t->seed);
		uint32_t addr = r->mem ? 0xe0000000u + ((x & 0x3f00) << 4) : 0xc000 + (x & 0x3f00);
		uint8_t b;

		if (x & 1)
			pci_cfg_write(&r->bus, 1, PCI_BASE_ADDRESS_0, 4, addr);
		else
			pci_cfg_write(&r->bus, 1, PCI_COMMAND, 2, (x >> 8) & decode);
		/* Guest accesses race with the moves. */
		io_bus_access(r->mem ? &r->mmio : &r->pio, addr, false, &b, 1);
	}
	return NULL;
}

static void run_race(bool mem)
{
	struct race *r = calloc(1, sizeof(*r));
	struct race_thread t[4];
	pthread_t tid[4];
	uint32_t bar, cmd;
	struct io_bus *own, *other;
	int i;

	assert_non_null(r);
	r->mem = mem;
	io_bus_init(&r->pio);
	io_bus_init(&r->mmio);
	assert_int_equal(pci_bus_init(&r->bus, &r->pio, &r->mmio), 0);
	pci_dev_init(&r->d, "d", 1, 2, 0, 0, 0, 0, false);
	if (mem)
		assert_int_equal(pci_dev_add_mem_bar(&r->d, 0, 0x1000, &quiet_ops, r), 0);
	else
		assert_int_equal(pci_dev_add_io_bar(&r->d, 0, 256, &quiet_ops, r), 0);
	r->d.owner = r;
	r->d.bar_moved = race_moved;
	assert_int_equal(pci_bus_add(&r->bus, &r->d, 1), 0);

	for (i = 0; i < 4; i++) {
		t[i] = (struct race_thread) { r, 1234u + i };
		assert_int_equal(pthread_create(&tid[i], NULL, race_worker, &t[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);

	assert_false(r->broken);
	assert_true(r->moves > 1);
	bar = pci_cfg_read(&r->bus, 1, PCI_BASE_ADDRESS_0, 4) & ~3u;
	cmd = pci_cfg_read(&r->bus, 1, PCI_COMMAND, 2);
	/* The port bus also holds the config ports. */
	own = mem ? &r->mmio : &r->pio;
	other = mem ? &r->pio : &r->mmio;
	assert_int_equal(other->nr, mem ? 1 : 0);
	if (cmd & (mem ? PCI_COMMAND_MEMORY : PCI_COMMAND_IO)) {
		assert_true(r->d.bar[0].mapped);
		assert_int_equal(r->d.bar[0].mapped_base, bar);
		assert_int_equal(r->current, bar);
		assert_int_equal(own->nr, mem ? 1 : 2);
	} else {
		assert_false(r->d.bar[0].mapped);
		assert_int_equal(r->current, 0);
		assert_int_equal(own->nr, mem ? 0 : 1);
	}

	pci_bus_destroy(&r->bus);
	io_bus_destroy(&r->mmio);
	io_bus_destroy(&r->pio);
	free(r);
}

static void test_concurrent_moves(void **state)
{
	run_race(false);
}

static void test_concurrent_mem_moves(void **state)
{
	run_race(true);
}

/* ---- memory BARs, capabilities, the config write hook ------------------- */

#define MEM_BAR1_SIZE		0x1000
#define MEM_BAR2_SIZE		16
#define MEM_BAR1		(PCI_MMIO_BASE)
#define MEM_BAR2		(PCI_MMIO_BASE + 0x1000)
#define CAP_A			0x40	/* MSI-X-like: 10 bytes of body */
#define CAP_B			0x4c	/* vendor-specific: 5 read-only bytes */

static uint32_t mmio_read(struct io_bus *mmio, uint64_t addr, unsigned int size)
{
	uint32_t v = 0;

	io_bus_access(mmio, addr, false, &v, size);
	return v;
}

static void mmio_write(struct io_bus *mmio, uint64_t addr, unsigned int size, uint32_t val)
{
	io_bus_access(mmio, addr, true, &val, size);
}

static bool mmio_claimed(struct io_bus *mmio, uint64_t addr)
{
	uint8_t b;

	return io_bus_access(mmio, addr, false, &b, 1);
}

/* No asserts in here: a longjmp out would leave the bus lock held. */
static void record_cfg_write(struct pci_dev *d, unsigned int off, unsigned int size,
			     uint32_t val)
{
	struct fixture *f = d->owner;
	int r = pthread_mutex_trylock(&d->bus->lock);

	if (!r)
		pthread_mutex_unlock(&d->bus->lock);
	if (f->nr_calls < MAX_CFG_CALLS) {
		struct cfg_call *c = &f->calls[f->nr_calls];

		*c = (struct cfg_call) { d->slot, off, size, val, 0, r == EBUSY };
		if (off < PCI_CFG_SIZE)
			memcpy(&c->applied, &d->cfg[off & ~3u], 4);
	}
	f->nr_calls++;
}

static void assert_cfg_call(struct fixture *f, int i, unsigned int off, unsigned int size,
			    uint32_t val, uint32_t applied)
{
	assert_true(i < f->nr_calls && i < MAX_CFG_CALLS);
	assert_int_equal(f->calls[i].slot, 2);
	assert_int_equal(f->calls[i].off, off);
	assert_int_equal(f->calls[i].size, size);
	assert_int_equal(f->calls[i].val, val);
	assert_int_equal(f->calls[i].applied, applied);
	assert_true(f->calls[i].locked);
}

/*
 * The fixture plus, in slot 2, a device with an I/O BAR0 (32 bytes),
 * memory BAR1 (4 KiB) and BAR2 (16 bytes), two capabilities and the
 * config write hook.
 */
static int setup_mem(void **state)
{
	static const uint8_t a_body[10] = { 0x02, 0x00, 0x01, 0, 0, 0, 0x01, 0x08, 0, 0 };
	static const uint8_t a_wmask[10] = { 0x00, 0xc0 };	/* enable, function mask */
	static const uint8_t b_body[5] = { 0x07, 0xaa, 0xbb, 0xcc, 0xdd };
	struct fixture *f;
	struct pci_dev *d;

	setup(state);
	f = *state;
	d = &f->mem;
	pci_dev_init(d, "mem", 0x1af4, 0x1042, 1, 0x010000, 0x1af4, 0x40, true);
	assert_int_equal(pci_dev_add_io_bar(d, 0, 32, &fake_ops, &f->mem_fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(d, 1, MEM_BAR1_SIZE, &fake_ops, &f->mem_fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(d, 2, MEM_BAR2_SIZE, &fake_ops, &f->mem_fb), 0);
	assert_int_equal(pci_dev_add_cap(d, 0x11, a_body, sizeof(a_body), a_wmask), CAP_A);
	assert_int_equal(pci_dev_add_cap(d, 0x09, b_body, sizeof(b_body), NULL), CAP_B);
	d->owner = f;
	d->bar_moved = record_move;
	d->cfg_write = record_cfg_write;
	f->nr_moves = 0;
	assert_int_equal(pci_bus_add(&f->bus, d, 2), 0);
	return 0;
}

static void test_mem_bar_placement(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_BASE_ADDRESS_0, 4), 0xc041);
	/* Type bits 0: 32-bit, not prefetchable. */
	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_BASE_ADDRESS_0 + 4, 4), MEM_BAR1);
	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_BASE_ADDRESS_0 + 8, 4), MEM_BAR2);
	assert_int_equal(pci_cfg_read(&f->bus, 2, PCI_COMMAND, 2),
			 PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_int_equal(f->nr_moves, 3);
	assert_move(f, 0, 0, 0, 0xc040);
	assert_move(f, 1, 1, 0, MEM_BAR1);
	assert_move(f, 2, 2, 0, MEM_BAR2);
	assert_int_equal(f->bus.mmio_next, MEM_BAR2 + MEM_BAR2_SIZE);
	assert_int_equal(f->mmio.nr, 2);
	assert_int_equal(f->pio.nr, 3);

	/* Each BAR on its own bus, with offsets inside it. */
	assert_int_equal(mmio_read(&f->mmio, MEM_BAR1 + 0x10, 4), 0xb0000010u);
	assert_int_equal(f->mem_fb.last_off, 0x10);
	assert_int_equal(mmio_read(&f->mmio, MEM_BAR1 + 0xffc, 4), 0xb0000ffcu);
	mmio_write(&f->mmio, MEM_BAR2 + 8, 4, 0x12345678);
	assert_int_equal(f->mem_fb.writes, 1);
	assert_int_equal(f->mem_fb.last_off, 8);
	assert_int_equal(f->mem_fb.last_val, 0x12345678);
	assert_true(port_claimed(&f->pio, 0xc040));
	assert_false(mmio_claimed(&f->mmio, 0xc040));

	/* Nothing past a BAR's end, not even on its page. */
	f->mem_fb.reads = 0;
	assert_false(mmio_claimed(&f->mmio, MEM_BAR2 + MEM_BAR2_SIZE));
	assert_false(mmio_claimed(&f->mmio, MEM_BAR1 + 0x2000));
	assert_int_equal(mmio_read(&f->mmio, MEM_BAR1 + 0xffe, 4), 0xffffffffu);
	assert_int_equal(f->mem_fb.reads, 0);
}

/* Page (or size) alignment, the window's end, and a bus without MMIO. */
static void test_mem_bar_alignment(void **state)
{
	static const uint32_t a_size[PCI_NUM_BARS] = { 16, 16, 0, 0x10000, 0, 0x2000 };
	struct io_bus pio, mmio;
	struct pci_bus bus, nommio;
	struct pci_dev a, b, c, d;
	struct fake_bar fb = { 0 };
	uint32_t base, prev_end = 0;
	int n;

	io_bus_init(&pio);
	io_bus_init(&mmio);
	assert_int_equal(pci_bus_init(&bus, &pio, &mmio), 0);
	pci_dev_init(&a, "a", 1, 1, 0, 0xff0000, 0, 0, false);
	for (n = 0; n < PCI_NUM_BARS; n++)
		if (a_size[n])
			assert_int_equal(pci_dev_add_mem_bar(&a, n, a_size[n], &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &a, 1), 0);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	for (n = 0; n < PCI_NUM_BARS; n++) {
		if (!a_size[n])
			continue;
		base = pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0 + 4 * n, 4);
		assert_int_equal(base % MAX(a_size[n], 0x1000u), 0);
		/* Alone on its page(s): starts on a page past the last one's. */
		assert_true(base >= ALIGN_UP(prev_end, 0x1000u));
		prev_end = base + a_size[n];
	}
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0, 4), PCI_MMIO_BASE);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0 + 4, 4), PCI_MMIO_BASE + 0x1000);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0 + 12, 4), PCI_MMIO_BASE + 0x10000);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_BASE_ADDRESS_0 + 20, 4), PCI_MMIO_BASE + 0x20000);

	/* I/O and memory BARs together; the memory one after a's. */
	pci_dev_init(&b, "b", 1, 2, 0, 0xff0000, 0, 0, true);
	assert_int_equal(pci_dev_add_mem_bar(&b, 0, 0x100, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_io_bar(&b, 1, 0x20, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &b, 2), 0);
	assert_int_equal(pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0, 4), PCI_MMIO_BASE + 0x22000);
	assert_int_equal(pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 4, 4), PCI_IO_BASE | 1);
	assert_int_equal(mmio.nr, 5);

	/* The last page of the window fits; past it, nothing changes. */
	bus.mmio_next = PCI_MMIO_END - 0x1000 - 8;
	pci_dev_init(&c, "c", 1, 3, 0, 0xff0000, 0, 0, true);
	assert_int_equal(pci_dev_add_mem_bar(&c, 0, 0x1000, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &c, 3), 0);
	assert_int_equal(pci_cfg_read(&bus, 3, PCI_BASE_ADDRESS_0, 4), PCI_MMIO_END - 0x1000);
	pci_dev_init(&d, "d", 1, 4, 0, 0xff0000, 0, 0, true);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 4, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(&d, 1, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_bus_add(&bus, &d, 4), -ENOSPC);
	assert_null(bus.dev[4]);
	assert_null(d.bus);
	assert_int_equal(bus.mmio_next, PCI_MMIO_END);
	assert_int_equal(bus.io_next, PCI_IO_BASE + 0x20);
	assert_int_equal(bus.next_gsi, PCI_IRQ_FIRST_GSI + 2);
	assert_int_equal(mmio.nr, 6);

	/* Without an MMIO bus, memory BARs are refused. */
	io_bus_unregister(&pio, PCI_CONFIG_ADDRESS, &bus);
	assert_int_equal(pci_bus_init(&nommio, &pio, NULL), 0);
	assert_int_equal(pci_bus_add(&nommio, &d, 4), -EINVAL);
	assert_null(nommio.dev[4]);
	assert_int_equal(nommio.io_next, PCI_IO_BASE);
	assert_int_equal(nommio.next_gsi, PCI_IRQ_FIRST_GSI);
	pci_bus_destroy(&nommio);

	/* Teardown empties both buses. */
	pci_bus_destroy(&bus);
	assert_int_equal(pio.nr, 0);
	assert_int_equal(mmio.nr, 0);
	assert_false(a.bar[0].mapped);
	assert_false(b.bar[1].mapped);
	io_bus_destroy(&mmio);
	io_bus_destroy(&pio);
}

static void test_add_mem_bar_checks(void **state)
{
	struct pci_dev d;
	struct fake_bar fb;

	pci_dev_init(&d, "d", 1, 2, 0, 0, 0, 0, false);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 8, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 48, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 0x20000, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 0, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 6, 16, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, -1, 16, &fake_ops, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 16, NULL, &fb), -EINVAL);
	assert_int_equal(pci_dev_add_mem_bar(&d, 0, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(&d, 5, 0x10000, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(&d, 5, 16, &fake_ops, &fb), -EBUSY);
	assert_int_equal(pci_dev_add_io_bar(&d, 0, 16, &fake_ops, &fb), -EBUSY);
	assert_int_equal(pci_dev_add_io_bar(&d, 1, 16, &fake_ops, &fb), 0);
	assert_int_equal(pci_dev_add_mem_bar(&d, 1, 16, &fake_ops, &fb), -EBUSY);
	/* Address bits above the size writable, type bits 3:0 not. */
	assert_int_equal(d.cfg[PCI_BASE_ADDRESS_0], 0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0], 0xf0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 3], 0xff);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 20], 0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 21], 0);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 22], 0xff);
	assert_int_equal(d.wmask[PCI_BASE_ADDRESS_0 + 23], 0xff);
}

/* pci_read_bases() on memory BARs: decode off, sizes, decode back on. */
static void test_mem_bar_sizing(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	uint32_t l1, l2, sz1, sz2;
	bool is_io;

	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, 0);
	assert_int_equal(f->nr_moves, 3);
	assert_int_equal(f->mmio.nr, 0);

	l1 = conf1_read(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 4, 4);
	l2 = conf1_read(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 8, 4);
	sz1 = linux_size_bar(pio, 2, 1);
	sz2 = linux_size_bar(pio, 2, 2);
	assert_int_equal(sz1, ~(uint32_t)(MEM_BAR1_SIZE - 1));
	assert_int_equal(sz2, ~(uint32_t)(MEM_BAR2_SIZE - 1));
	assert_int_equal(linux_bar_size(l1, sz1, &is_io), MEM_BAR1_SIZE);
	assert_false(is_io);
	assert_int_equal(linux_bar_size(l2, sz2, &is_io), MEM_BAR2_SIZE);
	assert_false(is_io);
	assert_int_equal(f->nr_moves, 3);
	assert_int_equal(f->mmio.nr, 0);

	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_int_equal(f->nr_moves, 6);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 4, 4), MEM_BAR1);
	assert_true(mmio_claimed(&f->mmio, MEM_BAR1));
	assert_true(mmio_claimed(&f->mmio, MEM_BAR2));
}

/* With memory decode on, the BAR sits at the top of 4 GiB while sized. */
static void test_mem_bar_sizing_decode_on(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	unsigned int pos = PCI_BASE_ADDRESS_0 + 4;
	uint32_t sz;

	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(2, 0), pos, 4, 0xffffffffu);
	sz = conf1_read(pio, 0, DEVFN(2, 0), pos, 4);
	assert_int_equal(sz, 0xfffff000u);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 1, MEM_BAR1, 0xfffff000u);
	assert_true(mmio_claimed(&f->mmio, 0xffffffffu));
	assert_false(mmio_claimed(&f->mmio, MEM_BAR1));

	conf1_write(pio, 0, DEVFN(2, 0), pos, 4, MEM_BAR1);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 1, 0xfffff000u, MEM_BAR1);
	assert_false(mmio_claimed(&f->mmio, 0xffffffffu));
	assert_true(mmio_claimed(&f->mmio, MEM_BAR1));
}

/* Every legal size: Linux recovers it, and the placement is aligned. */
static void test_mem_bar_sizes_all(void **state)
{
	uint32_t size;

	for (size = 16; size <= 0x10000; size <<= 1) {
		struct io_bus pio, mmio;
		struct pci_bus bus;
		struct pci_dev pad, d;
		struct fake_bar fb = { 0 };
		uint32_t l, sz;
		bool is_io;

		io_bus_init(&pio);
		io_bus_init(&mmio);
		assert_int_equal(pci_bus_init(&bus, &pio, &mmio), 0);
		/* A 16-byte BAR first, so that alignment has work to do. */
		pci_dev_init(&pad, "pad", 0x1234, 0x5678, 0, 0xff0000, 0, 0, false);
		assert_int_equal(pci_dev_add_mem_bar(&pad, 0, 16, &fake_ops, &fb), 0);
		assert_int_equal(pci_bus_add(&bus, &pad, 1), 0);
		pci_dev_init(&d, "d", 0x1af4, 0x1041, 1, 0x010000, 0x1af4, 2, false);
		assert_int_equal(pci_dev_add_mem_bar(&d, 4, size, &fake_ops, &fb), 0);
		assert_int_equal(pci_bus_add(&bus, &d, 2), 0);

		l = pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 16, 4);
		assert_int_equal(l & 0xf, 0);
		assert_int_equal(l % MAX(size, 0x1000u), 0);
		assert_true(l >= PCI_MMIO_BASE + 0x1000);
		assert_int_equal(d.bar[4].mapped_base, l);
		pci_cfg_write(&bus, 2, PCI_COMMAND, 2, 0);
		pci_cfg_write(&bus, 2, PCI_BASE_ADDRESS_0 + 16, 4, 0xffffffffu);
		sz = pci_cfg_read(&bus, 2, PCI_BASE_ADDRESS_0 + 16, 4);
		pci_cfg_write(&bus, 2, PCI_BASE_ADDRESS_0 + 16, 4, l);
		assert_int_equal(sz, ~(size - 1));
		assert_int_equal(linux_bar_size(l, sz, &is_io), size);
		assert_false(is_io);

		pci_bus_destroy(&bus);
		assert_int_equal(mmio.nr, 0);
		io_bus_destroy(&mmio);
		io_bus_destroy(&pio);
	}
}

static void test_mem_decode_toggle(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	/* Memory decode off: the memory BARs go, the I/O BAR stays. */
	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 0, 1, MEM_BAR1, 0);
	assert_move(f, 1, 2, MEM_BAR2, 0);
	assert_false(mmio_claimed(&f->mmio, MEM_BAR1));
	assert_false(mmio_claimed(&f->mmio, MEM_BAR2));
	assert_int_equal(f->mmio.nr, 0);
	assert_true(port_claimed(pio, 0xc040));
	/* The registers keep the addresses. */
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 4, 4), MEM_BAR1);

	/* And on again. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_int_equal(f->nr_moves, 4);
	assert_move(f, 2, 1, 0, MEM_BAR1);
	assert_move(f, 3, 2, 0, MEM_BAR2);
	assert_int_equal(mmio_read(&f->mmio, MEM_BAR2 + 4, 4), 0xb0000004u);

	/* I/O decode off leaves the memory BARs alone. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(f->nr_moves, 5);
	assert_move(f, 4, 0, 0xc040, 0);
	assert_true(mmio_claimed(&f->mmio, MEM_BAR1));
	assert_false(port_claimed(pio, 0xc040));

	/* Rewriting the same command is no move. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(f->nr_moves, 5);
}

static void test_mem_bar_move(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	unsigned int pos = PCI_BASE_ADDRESS_0 + 4;

	/* The size bits and the type bits do not stick. */
	f->nr_moves = 0;
	conf1_write(pio, 0, DEVFN(2, 0), pos, 4, 0xe0100abfu);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), pos, 4), 0xe0100000u);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 1, MEM_BAR1, 0xe0100000u);
	assert_false(mmio_claimed(&f->mmio, MEM_BAR1));
	f->mem_fb.reads = 0;
	assert_int_equal(mmio_read(&f->mmio, 0xe0100008u, 4), 0xb0000008u);
	assert_int_equal(f->mem_fb.reads, 1);
	assert_int_equal(f->mem_fb.last_off, 8);

	/* Onto what would be RAM: the guest's business, decoded there. */
	conf1_write(pio, 0, DEVFN(2, 0), pos, 4, 0x00200000u);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 1, 0xe0100000u, 0x00200000u);
	assert_true(mmio_claimed(&f->mmio, 0x00200fffu));

	/* A byte at a time: each write is a move of its own. */
	conf1_write(pio, 0, DEVFN(2, 0), pos + 3, 1, 0xe1);
	assert_int_equal(f->nr_moves, 3);
	assert_move(f, 2, 1, 0x00200000u, 0xe1200000u);
	assert_true(mmio_claimed(&f->mmio, 0xe1200000u));

	/* The 16-byte BAR at the very top of 4 GiB. */
	conf1_write(pio, 0, DEVFN(2, 0), pos + 4, 4, 0xfffffff0u);
	assert_move(f, 3, 2, MEM_BAR2, 0xfffffff0u);
	assert_int_equal(mmio_read(&f->mmio, 0xfffffffcu, 4), 0xb000000cu);
	assert_false(mmio_claimed(&f->mmio, 0x100000000ull));
}

static void test_mem_overlap_refused_once(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	struct fake_bar other = { 0 };
	struct capture cap;
	const char *log;

	assert_int_equal(io_bus_register(&f->mmio, 0xe0200800u, 0x100, &fake_ops, &other, "o"), 0);
	f->nr_moves = 0;
	assert_int_equal(capture_start(&cap, false), 0);
	conf1_write(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 4, 4, 0xe0200000u);
	/* Retried on every decode write, failing again, quietly. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	log = capture_end(&cap);
	assert_non_null(log);
	assert_int_equal(str_count(log, "left unmapped"), 1);
	assert_non_null(strstr(log, "memory BAR1 at 0xe0200000-0xe0200fff"));

	assert_false(f->mem.bar[1].mapped);
	assert_true(f->mem.bar[1].warned);
	assert_int_equal(f->nr_moves, 1);
	assert_move(f, 0, 1, MEM_BAR1, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 4, 4), 0xe0200000u);
	assert_false(mmio_claimed(&f->mmio, 0xe0200000u));
	assert_false(mmio_claimed(&f->mmio, MEM_BAR1));
	f->mem_fb.reads = 0;
	mmio_read(&f->mmio, 0xe0200800u, 4);
	assert_int_equal(other.reads, 1);
	assert_int_equal(f->mem_fb.reads, 0);

	/* Once the range is free, the next decode write maps it. */
	assert_int_equal(io_bus_unregister(&f->mmio, 0xe0200800u, &other), 0);
	conf1_write(pio, 0, DEVFN(2, 0), PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_true(f->mem.bar[1].mapped);
	assert_int_equal(f->nr_moves, 2);
	assert_move(f, 1, 1, 0, 0xe0200000u);

	/* A memory BAR onto another one of the same device is refused too. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_BASE_ADDRESS_0 + 8, 4, 0xe0200ff0u);
	assert_false(f->mem.bar[2].mapped);
	assert_move(f, 2, 2, MEM_BAR2, 0);
	assert_true(f->mem.bar[1].mapped);
	assert_int_equal(f->mem.bar[1].mapped_base, 0xe0200000u);
}

/* Linux's __pci_find_next_cap_ttl(), over the ports. */
static int linux_walk_caps(struct io_bus *pio, unsigned int slot, uint8_t *ids, uint8_t *offs,
			   int max)
{
	unsigned int pos = conf1_read(pio, 0, DEVFN(slot, 0), PCI_CAPABILITY_LIST, 1);
	int ttl = 48, n = 0;

	while (ttl--) {
		uint16_t ent;

		if (pos < 0x40)
			break;
		pos &= ~3u;
		ent = conf1_read(pio, 0, DEVFN(slot, 0), pos, 2);
		if ((ent & 0xff) == 0xff)
			break;
		if (n < max) {
			ids[n] = ent & 0xff;
			offs[n] = pos;
		}
		n++;
		pos = ent >> 8;
	}
	return n;
}

static void test_cap_list_walk(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	uint8_t ids[4], offs[4];

	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_CAPABILITY_LIST, 1), CAP_A);
	assert_int_equal(linux_walk_caps(pio, 2, ids, offs, 4), 2);
	assert_int_equal(ids[0], 0x11);
	assert_int_equal(offs[0], CAP_A);
	assert_int_equal(ids[1], 0x09);
	assert_int_equal(offs[1], CAP_B);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A, 4), 0x00024c11);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 4, 4), 1);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 8, 4), 0x801);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_B, 4), 0xaa070009);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_B + 4, 4), 0x00ddccbb);
	/* The device without capabilities has no list. */
	assert_int_equal(linux_walk_caps(pio, 1, ids, offs, 4), 0);
}

static void test_cap_wmask(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;
	unsigned int off;

	/* Only the bits body_wmask names, here 15:14 of the control word. */
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 2, 2, 0xffff);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 2, 2), 0xc002);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 3, 1, 0x40);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 2, 2), 0x4002);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A, 4, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A, 4), 0x00024c11);
	/* Header (ID, next) and the rest of the body are read-only. */
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A, 4, 0xffffffffu);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A, 4), 0xc0024c11);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 4, 4, 0xffffffffu);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 8, 4, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 4, 4), 1);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_A + 8, 4), 0x801);
	/* A body without a mask, the list pointer, the status bit. */
	conf1_write(pio, 0, DEVFN(2, 0), CAP_B, 4, 0xffffffffu);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_B + 4, 4, 0xffffffffu);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_B, 4), 0xaa070009);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), CAP_B + 4, 4), 0x00ddccbb);
	conf1_write(pio, 0, DEVFN(2, 0), PCI_CAPABILITY_LIST, 1, 0x80);
	conf1_write(pio, 0, DEVFN(2, 0), PCI_STATUS, 2, 0);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_CAPABILITY_LIST, 1), CAP_A);
	assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	/* Past the last capability: nothing. */
	for (off = CAP_B + 8; off < PCI_CFG_SIZE; off += 4) {
		conf1_write(pio, 0, DEVFN(2, 0), off, 4, 0xffffffffu);
		assert_int_equal(conf1_read(pio, 0, DEVFN(2, 0), off, 4), 0);
	}
}

static void test_cap_enospc(void **state)
{
	static const uint8_t body[0xb0] = { 1, 2, 3 };
	struct io_bus pio;
	struct pci_bus bus;
	struct pci_dev d;

	pci_dev_init(&d, "d", 1, 2, 0, 0, 0, 0, false);
	assert_int_equal(pci_dev_add_cap(&d, 0x09, NULL, 4, NULL), -EINVAL);
	assert_int_equal(pci_dev_add_cap(&d, 0x09, body, sizeof(body), NULL), 0x40);
	/* A bare header fits at the next dword (0xf2 -> 0xf4). */
	assert_int_equal(pci_dev_add_cap(&d, 0x0a, NULL, 0, NULL), 0xf4);
	assert_int_equal(pci_dev_add_cap(&d, 0x0b, body, 10, NULL), -ENOSPC);
	assert_int_equal(pci_dev_add_cap(&d, 0x0b, body, 0xffffffffu, NULL), -ENOSPC);
	/* Up to the last byte of config space exactly. */
	assert_int_equal(pci_dev_add_cap(&d, 0x0c, body, 6, NULL), 0xf8);
	assert_int_equal(pci_dev_add_cap(&d, 0x0d, NULL, 0, NULL), -ENOSPC);
	assert_int_equal(d.cfg[PCI_CAPABILITY_LIST], 0x40);
	assert_int_equal(d.cfg[0x41], 0xf4);
	assert_int_equal(d.cfg[0xf4], 0x0a);
	assert_int_equal(d.cfg[0xf5], 0xf8);
	assert_int_equal(d.cfg[0xf8], 0x0c);
	assert_int_equal(d.cfg[0xf9], 0);
	assert_int_equal(d.cfg[0xfc], 3);
	assert_int_equal(d.cfg[0xff], 0);

	/* On a bus, the list is fixed. */
	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	pci_dev_init(&d, "d", 1, 2, 0, 0, 0, 0, false);
	assert_int_equal(pci_bus_add(&bus, &d, 1), 0);
	assert_int_equal(pci_dev_add_cap(&d, 0x09, NULL, 0, NULL), -EBUSY);
	assert_int_equal(pci_cfg_read(&bus, 1, PCI_STATUS, 2), 0);
	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
}

static void test_cfg_write_hook(void **state)
{
	struct fixture *f = *state;
	struct io_bus *pio = &f->pio;

	f->nr_calls = 0;
	/* After the write took effect, lock held, val as written. */
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 2, 2, 0xffff);
	assert_int_equal(f->nr_calls, 1);
	assert_cfg_call(f, 0, CAP_A + 2, 2, 0xffff, 0xc0024c11);
	conf1_write(pio, 0, DEVFN(2, 0), CAP_A + 3, 1, 0x00);
	assert_cfg_call(f, 1, CAP_A + 3, 1, 0, 0x00024c11);
	/* Read-only bytes too: the device sees what the guest tried. */
	conf1_write(pio, 0, DEVFN(2, 0), PCI_VENDOR_ID, 4, 0x12345678);
	assert_cfg_call(f, 2, PCI_VENDOR_ID, 4, 0x12345678, 0x10421af4);
	/* The VMM-side path; only the size bytes are passed on. */
	pci_cfg_write(&f->bus, 2, CAP_A + 3, 1, 0xabc0);
	assert_cfg_call(f, 3, CAP_A + 3, 1, 0xc0, 0xc0024c11);
	/* A BAR write: applied (and moved) by the time the hook runs. */
	pci_cfg_write(&f->bus, 2, PCI_BASE_ADDRESS_0 + 4, 4, 0xe0300000u);
	assert_cfg_call(f, 4, PCI_BASE_ADDRESS_0 + 4, 4, 0xe0300000u, 0xe0300000u);
	assert_int_equal(f->nr_calls, 5);
	assert_true(mmio_claimed(&f->mmio, 0xe0300000u));

	/* Other devices, empty slots, other functions, reads: no call. */
	conf1_write(pio, 0, DEVFN(1, 0), PCI_COMMAND, 2, PCI_COMMAND_IO);
	conf1_write(pio, 0, DEVFN(1, 0), CAP_A + 2, 2, 0xffff);
	pci_cfg_write(&f->bus, 1, PCI_INTERRUPT_LINE, 1, 5);
	conf1_write(pio, 0, DEVFN(5, 0), PCI_COMMAND, 2, 0);
	conf1_write(pio, 0, DEVFN(2, 1), PCI_COMMAND, 2, 0);
	conf1_write(pio, 1, DEVFN(2, 0), PCI_COMMAND, 2, 0);
	pci_cfg_write(&f->bus, 2, 0xfe, 4, 0);
	pci_cfg_write(&f->bus, 2, CAP_A, 3, 0);
	conf1_read(pio, 0, DEVFN(2, 0), CAP_A, 4);
	pci_cfg_read(&f->bus, 2, CAP_A, 4);
	assert_int_equal(f->nr_calls, 5);
}

#define FIXTURE_TEST(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define MEM_TEST(fn)		cmocka_unit_test_setup_teardown(fn, setup_mem, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FIXTURE_TEST(test_add_places_bar_and_gsi),
		FIXTURE_TEST(test_latch_dword_only),
		FIXTURE_TEST(test_linux_check_type1),
		FIXTURE_TEST(test_host_bridge),
		FIXTURE_TEST(test_virtio_identity_widths),
		FIXTURE_TEST(test_absent_reads_ones),
		FIXTURE_TEST(test_read_only_fields),
		FIXTURE_TEST(test_command_mask),
		FIXTURE_TEST(test_interrupt_line_and_pin),
		FIXTURE_TEST(test_bar_sizing_linux_decode_off),
		FIXTURE_TEST(test_bar_sizing_decode_on),
		FIXTURE_TEST(test_bar_sizing_bytewise),
		cmocka_unit_test(test_bar_sizes_all),
		FIXTURE_TEST(test_bar_move),
		FIXTURE_TEST(test_decode_disable_unmaps),
		FIXTURE_TEST(test_bar_outside_64k_unmapped),
		FIXTURE_TEST(test_overlap_leaves_unmapped),
		FIXTURE_TEST(test_add_errors),
		cmocka_unit_test(test_add_io_bar_checks),
		cmocka_unit_test(test_add_register_failure_rolls_back),
		cmocka_unit_test(test_gsi_assignment),
		cmocka_unit_test(test_bus_irqs),
		cmocka_unit_test(test_io_space_exhaustion),
		cmocka_unit_test(test_destroy_unregisters),
		cmocka_unit_test(test_concurrent_moves),
		cmocka_unit_test(test_concurrent_mem_moves),
		MEM_TEST(test_mem_bar_placement),
		cmocka_unit_test(test_mem_bar_alignment),
		cmocka_unit_test(test_add_mem_bar_checks),
		MEM_TEST(test_mem_bar_sizing),
		MEM_TEST(test_mem_bar_sizing_decode_on),
		cmocka_unit_test(test_mem_bar_sizes_all),
		MEM_TEST(test_mem_decode_toggle),
		MEM_TEST(test_mem_bar_move),
		MEM_TEST(test_mem_overlap_refused_once),
		MEM_TEST(test_cap_list_walk),
		MEM_TEST(test_cap_wmask),
		cmocka_unit_test(test_cap_enospc),
		MEM_TEST(test_cfg_write_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
