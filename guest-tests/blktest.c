// SPDX-License-Identifier: MIT
/*
 * virtio-blk test guest: one binary, one case per boot, chosen by
 * "case=NAME" on the command line (also: cap=SECTORS the disk must have,
 * serial=ID the GET_ID answer must be).  Exit status 0x50 is a pass,
 * anything else a failure (a line on COM1 says where).
 *
 * Writes use the pattern of lib.c pat_fill(); tests/guest/run.sh knows
 * each case's valid writes (sector, count, seed) and compares the image
 * with the original plus exactly those.
 */
#include "lib.h"

#define ALL_F	(F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_TOPOLOGY | F_CONFIG_WCE | F_INDIRECT)

static struct vdev dev;
static volatile uint8_t *const status = (volatile uint8_t *)STATUS_ADDR;

static void setup(uint32_t want)
{
	vdev_find(&dev);
	vdev_init(&dev, want, RING0_ADDR);
}

static uint64_t expect_cap(void)
{
	uint64_t cap = cmdline_u64("cap", 0);

	CHECK(cap != 0);
	CHECK_EQ(vdev_capacity(&dev), cap);
	return cap;
}

/* Post head, kick, wait for its used entry with length len. */
static void submit(uint16_t head, int64_t len)
{
	vq_post(&dev, head);
	vq_kick(&dev);
	vq_complete(&dev, head, len);
}

/*
 * A chain the device refuses (loop, bad order, buffer outside RAM, ...)
 * whose last descriptor is still a writable status byte: used length 1,
 * IOERR there, and nothing else written (the caller checks that read
 * buffers keep DATA_FILL; the host that the image is unchanged).
 */
static void expect_ioerr(uint16_t head)
{
	*status = ST_SENTINEL;
	submit(head, 1);
	CHECK_EQ(*status, ST_IOERR);
}

/* A good read that must not be served while the device needs a reset. */
#define PROBE_DESC	60
#define PROBE_ADDR	(DATA2_ADDR + 0x10000)

/*
 * A request without a status byte the device can write (none writable,
 * empty, outside RAM, or a chain that cannot be followed to its end):
 * the device returns it with used length 0 and writes nothing, and since
 * the driver cannot learn what became of it, it wants a reset
 * (NEEDS_RESET, config interrupt) and serves nothing more until then.
 * The device is set up again, on the other ring, for the next sub-case.
 */
static void expect_needs_reset(uint16_t head)
{
	volatile uint8_t *probe_st = P(STATUS_ADDR + 1);
	uint64_t t0;

	*status = ST_SENTINEL;
	submit(head, 0);
	CHECK_EQ(*status, ST_SENTINEL);
	/* Set just after the used entry is written: wait for it. */
	t0 = rdtsc();
	while (!(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET))
		CHECK(rdtsc() - t0 < WAIT_LONG);
	CHECK(inb(dev.io + VIRTIO_ISR) & 2);	/* config-change interrupt cause */

	*probe_st = ST_SENTINEL;
	set_desc(dev.desc, PROBE_DESC, hdr_at(PROBE_DESC, T_IN, 0), 16, D_NEXT, PROBE_DESC + 1);
	set_desc(dev.desc, PROBE_DESC + 1, PROBE_ADDR, 512, D_NEXT | D_WRITE, PROBE_DESC + 2);
	set_desc(dev.desc, PROBE_DESC + 2, STATUS_ADDR + 1, 1, D_WRITE, 0);
	vq_post(&dev, PROBE_DESC);
	vq_kick(&dev);
	CHECK(!vq_wait(&dev, WAIT_SHORT));
	CHECK_EQ(*probe_st, ST_SENTINEL);
	CHECK(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET);
	vdev_init(&dev, ALL_F, dev.ring == RING0_ADDR ? RING1_ADDR : RING0_ADDR);
	CHECK(!(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET));
}

static bool all_fill(uint64_t pa, unsigned int n)
{
	const uint8_t *p = P(pa);

	while (n--)
		if (*p++ != DATA_FILL)
			return false;
	return true;
}

/* A standard OUT chain at descriptors i, i+1, i+2 with data at data/len. */
static void out_chain(unsigned int i, uint64_t sector, uint64_t data, uint32_t len)
{
	set_desc(dev.desc, i, hdr_at(i, T_OUT, sector), 16, D_NEXT, i + 1);
	set_desc(dev.desc, i + 1, data, len, D_NEXT, i + 2);
	set_desc(dev.desc, i + 2, STATUS_ADDR, 1, D_WRITE, 0);
}

/* ---- driver path ---------------------------------------------------------- */

static void case_driver(void)
{
	char serial[24], id[20];
	uint32_t ulen;
	uint16_t num;

	vdev_find(&dev);
	/* and no RO; DISCARD/WRITE_ZEROES depend on the image's file system */
	CHECK_EQ(dev.host_features & ~(F_DISCARD | F_WRITE_ZEROES), ALL_F | F_EVENT_IDX);
	expect_cap();
	outw(dev.io + VIRTIO_QUEUE_SEL, 0);
	num = inw(dev.io + VIRTIO_QUEUE_NUM);
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 12), num - 2);	/* seg_max */
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 20), 512);	/* blk_size */
	/* Config reads byte by byte give the same as wide ones (Linux reads bytes). */
	CHECK_EQ(inb(dev.io + VIRTIO_CONFIG + 20) | inb(dev.io + VIRTIO_CONFIG + 21) << 8,
		 512);
	vdev_init(&dev, ALL_F, RING0_ADDR);

	/* 4 sectors at 100 in two data descriptors. */
	pat_fill(DATA_ADDR, 4, 0x11);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_OUT, 100), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA_ADDR, 1024, D_NEXT, 2);
	set_desc(dev.desc, 2, DATA_ADDR + 1024, 1024, D_NEXT, 3);
	set_desc(dev.desc, 3, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 1);
	CHECK_EQ(*status, ST_OK);
	memset(P(DATA2_ADDR), DATA_FILL, 4096);
	CHECK_EQ(blk_req(&dev, T_IN, 100, DATA2_ADDR, 2048), ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 4, 0x11));
	CHECK(all_fill(DATA2_ADDR + 2048, 2048));
	CHECK_EQ(blk_req(&dev, T_FLUSH, 0, 0, 0), ST_OK);
	CHECK_EQ(blk_req(&dev, T_FLUSH_OUT, 0, 0, 0), ST_OK);

	/* GET_ID: 20 bytes, NUL-padded; used length 20 + status. */
	CHECK(cmdline_get("serial", serial, sizeof(serial)));
	memset(id, 0, sizeof(id));
	memcpy(id, serial, strlen(serial) > 20 ? 20 : strlen(serial));
	memset(P(DATA2_ADDR), DATA_FILL, 64);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_GET_ID, 0), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA2_ADDR, 20, D_NEXT | D_WRITE, 2);
	set_desc(dev.desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
	vq_post(&dev, 0);
	vq_kick(&dev);
	ulen = vq_complete(&dev, 0, -1);
	CHECK_EQ(*status, ST_OK);
	CHECK_EQ(ulen, 21);
	CHECK(!memcmp(P(DATA2_ADDR), id, 20));
	CHECK(all_fill(DATA2_ADDR + 20, 44));
}

/* GET_ID into a short buffer (8 bytes) and a long one (32 bytes). */
static void case_get_id_short(void)
{
	char serial[24];

	setup(ALL_F);
	CHECK(cmdline_get("serial", serial, sizeof(serial)));
	CHECK(strlen(serial) >= 8);
	memset(P(DATA2_ADDR), DATA_FILL, 64);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_GET_ID, 0), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA2_ADDR, 8, D_NEXT | D_WRITE, 2);
	set_desc(dev.desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 9);
	CHECK_EQ(*status, ST_OK);
	CHECK(!memcmp(P(DATA2_ADDR), serial, 8));
	CHECK(all_fill(DATA2_ADDR + 8, 56));

	memset(P(DATA2_ADDR), DATA_FILL, 64);
	set_desc(dev.desc, 1, DATA2_ADDR, 32, D_NEXT | D_WRITE, 2);
	submit(0, 21);
	CHECK_EQ(*status, ST_OK);
	CHECK(!memcmp(P(DATA2_ADDR), serial, strlen(serial)));
	CHECK(all_fill(DATA2_ADDR + 20, 44));
	valid_rw(&dev, 3, 1, 0x19);
}

/* ---- completion by interrupt ---------------------------------------------- */

static volatile unsigned int irq_count, timer_fired;
static volatile uint8_t isr_first[4], isr_second[4];

void irq_dev(void)
{
	uint8_t a = inb(dev.io + VIRTIO_ISR), b = inb(dev.io + VIRTIO_ISR);

	if (irq_count < 4) {
		isr_first[irq_count] = a;
		isr_second[irq_count] = b;
	}
	irq_count++;
	lapic_eoi();
}

static volatile unsigned int irq2_count;

void irq_dev2(void)
{
	irq2_count++;
	lapic_eoi();
}

void irq_timer(void)
{
	timer_fired = 1;
	lapic_eoi();
}

/* HLT with interrupts on until n device interrupts came, or the watchdog. */
static void wait_irqs(unsigned int n)
{
	timer_fired = 0;
	lapic_timer_oneshot(VEC_TIMER, 0x10000000);	/* ~4 s at KVM's 1 GHz APIC bus */
	while (irq_count < n && !timer_fired)
		__asm__ __volatile__("sti; hlt; cli" ::: "memory");
	lapic_timer_stop();
	CHECK(!timer_fired);
	CHECK_EQ(irq_count, n);
}

static void case_irq(void)
{
	uint64_t t0;

	setup(ALL_F);
	CHECK(dev.irq_line >= 16 && dev.irq_line <= 23);	/* a PCI GSI on the IOAPIC */
	pic_mask_all();
	idt_setup();
	lapic_enable();
	ioapic_route(dev.irq_line, VEC_DEV, true);

	pat_fill(DATA_ADDR, 1, 0x22);
	*status = ST_SENTINEL;
	out_chain(0, 200, DATA_ADDR, 512);
	vq_post(&dev, 0);
	vq_kick(&dev);
	wait_irqs(1);
	CHECK(vq_used_idx(&dev) == 1);
	vq_complete(&dev, 0, 1);
	CHECK_EQ(*status, ST_OK);
	CHECK_EQ(isr_first[0], 1);	/* queue interrupt */
	CHECK_EQ(isr_second[0], 0);	/* the first read cleared it */

	memset(P(DATA2_ADDR), DATA_FILL, 512);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 3, hdr_at(3, T_IN, 200), 16, D_NEXT, 4);
	set_desc(dev.desc, 4, DATA2_ADDR, 512, D_NEXT | D_WRITE, 5);
	set_desc(dev.desc, 5, STATUS_ADDR, 1, D_WRITE, 0);
	vq_post(&dev, 3);
	vq_kick(&dev);
	wait_irqs(2);
	vq_complete(&dev, 3, 513);
	CHECK_EQ(*status, ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 1, 0x22));
	CHECK_EQ(isr_first[1], 1);
	CHECK_EQ(isr_second[1], 0);

	/* No interrupt nobody claims: the line stays quiet after the EOIs. */
	__asm__ __volatile__("sti" ::: "memory");
	t0 = rdtsc();
	while (rdtsc() - t0 < WAIT_SHORT)
		;
	__asm__ __volatile__("cli" ::: "memory");
	CHECK_EQ(irq_count, 2);
}

/* ---- MSI-X ----------------------------------------------------------------- */

#define CAP_MSIX		0x11
#define MSIX_ENABLE		0x8000
#define MSIX_MASKALL		0x4000
#define MSI_CONFIG_VECTOR	20	/* with MSI-X on; the config moves to 24 */
#define MSI_QUEUE_VECTOR	22
#define CONFIG_MSIX		24
#define NO_VECTOR		0xffff
#define MSI_ADDR		0xfee00000u	/* the LAPIC of CPU 0, fixed delivery */

static unsigned int msix_cap;
static volatile uint32_t *msix_tbl;	/* BAR 1: entries of 4 dwords, PBA at 0x800 */

/* The capability and BAR 1 as pci_msix_init finds them: two vectors. */
static void msix_find(void)
{
	unsigned int pos, n = 0;
	uint32_t bar, mask;
	uint16_t cmd;

	CHECK(pci_read(dev.slot, 0x06, 2) & 0x10);		/* capability list */
	for (pos = pci_read(dev.slot, 0x34, 1) & ~3u; pos && n < 48;
	     pos = pci_read(dev.slot, pos + 1, 1) & ~3u, n++)
		if (pci_read(dev.slot, pos, 1) == CAP_MSIX)
			break;
	CHECK(pos >= 0x40);
	msix_cap = pos;
	CHECK_EQ(pci_read(dev.slot, pos + 2, 2), 1);		/* 2 vectors, off, unmasked */
	CHECK_EQ(pci_read(dev.slot, pos + 4, 4), 1);		/* table at 0 in BAR 1 */
	CHECK_EQ(pci_read(dev.slot, pos + 8, 4), 0x801);	/* PBA at 0x800 in BAR 1 */
	cmd = pci_read(dev.slot, 0x04, 2);
	CHECK(cmd & 2);						/* memory decode on */
	bar = pci_read(dev.slot, 0x14, 4);
	CHECK_EQ(bar & 0xf, 0);					/* 32-bit memory */
	pci_write(dev.slot, 0x04, 2, cmd & ~2u);
	pci_write(dev.slot, 0x14, 4, 0xffffffff);
	mask = pci_read(dev.slot, 0x14, 4);
	pci_write(dev.slot, 0x14, 4, bar);
	pci_write(dev.slot, 0x04, 2, cmd);
	CHECK_EQ(~(mask & ~0xfu) + 1, 0x1000);
	CHECK(bar >= 0xc0000000u && bar < 0xfec00000u);	/* in the PCI hole */
	msix_tbl = (volatile uint32_t *)(uintptr_t)bar;
}

static void msix_control(uint16_t v)
{
	pci_write(dev.slot, msix_cap + 2, 2, v);
}

static void msix_program(unsigned int v, uint32_t addr)
{
	msix_tbl[4 * v] = addr;
	msix_tbl[4 * v + 1] = 0;
	msix_tbl[4 * v + 2] = VEC_DEV;
	msix_tbl[4 * v + 3] = 0;
}

static uint32_t msix_pba(void)
{
	return msix_tbl[0x800 / 4];
}

static void irq_setup_lapic(void)
{
	pic_mask_all();
	idt_setup();
	lapic_enable();
}

/* Interrupts on for a while: no device interrupt may come. */
static void expect_no_irq(unsigned int count)
{
	uint64_t t0 = rdtsc();

	__asm__ __volatile__("sti" ::: "memory");
	while (rdtsc() - t0 < WAIT_SHORT)
		;
	__asm__ __volatile__("cli" ::: "memory");
	CHECK_EQ(irq_count, count);
}

/* A write of one pattern sector, completed by polling the used ring. */
static void write_polled(uint64_t sector, unsigned int seed)
{
	pat_fill(DATA_ADDR, 1, seed);
	*status = ST_SENTINEL;
	out_chain(0, sector, DATA_ADDR, 512);
	submit(0, 1);
	CHECK_EQ(*status, ST_OK);
}

static void write_irq(uint64_t sector, unsigned int seed, unsigned int n)
{
	pat_fill(DATA_ADDR, 1, seed);
	*status = ST_SENTINEL;
	out_chain(0, sector, DATA_ADDR, 512);
	vq_post(&dev, 0);
	vq_kick(&dev);
	wait_irqs(n);
	vq_complete(&dev, 0, 1);
	CHECK_EQ(*status, ST_OK);
}

/*
 * As Linux's vp_find_vqs_msix: MSI-X on (function masked while set up),
 * vector 0 for config, 1 for the queue; completions by message, masks
 * holding them in the PBA until lifted, INTx again with MSI-X off.
 */
static void case_msix(void)
{
	uint64_t cap;

	setup(ALL_F);
	msix_find();
	cap = vdev_capacity(&dev);
	irq_setup_lapic();
	msix_control(MSIX_ENABLE | MSIX_MASKALL);
	CHECK_EQ(inl(dev.io + CONFIG_MSIX), (uint32_t)cap);	/* config moved to 24 */
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), NO_VECTOR);
	outw(dev.io + MSI_CONFIG_VECTOR, 0);
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), 0);
	outw(dev.io + VIRTIO_QUEUE_SEL, 0);
	outw(dev.io + MSI_QUEUE_VECTOR, 1);
	CHECK_EQ(inw(dev.io + MSI_QUEUE_VECTOR), 1);
	msix_program(0, MSI_ADDR);
	msix_program(1, MSI_ADDR);
	msix_control(MSIX_ENABLE);

	write_irq(210, 0x26, 1);
	CHECK_EQ(isr_first[0], 0);	/* nothing in ISR: the message is the interrupt */

	/* The entry masked: completed, no message, the pending bit set. */
	msix_tbl[4 + 3] = 1;
	write_polled(211, 0x27);
	expect_no_irq(1);
	CHECK_EQ(msix_pba(), 2);
	msix_tbl[4 + 3] = 0;		/* unmasked: the held message comes */
	wait_irqs(2);
	CHECK_EQ(msix_pba(), 0);

	/* The function masked: the same. */
	msix_control(MSIX_ENABLE | MSIX_MASKALL);
	write_polled(212, 0x28);
	expect_no_irq(2);
	CHECK_EQ(msix_pba(), 2);
	msix_control(MSIX_ENABLE);
	wait_irqs(3);
	CHECK_EQ(msix_pba(), 0);

	/* A new message for a vector in use (Linux's affinity change): mask, rewrite, unmask. */
	msix_tbl[4 + 3] = 1;
	msix_tbl[4 + 2] = VEC_DEV2;
	msix_tbl[4 + 3] = 0;
	write_polled(214, 0x2c);
	timer_fired = 0;
	lapic_timer_oneshot(VEC_TIMER, 0x10000000);
	while (!irq2_count && !timer_fired)
		__asm__ __volatile__("sti; hlt; cli" ::: "memory");
	lapic_timer_stop();
	CHECK_EQ(irq2_count, 1);
	CHECK_EQ(irq_count, 3);		/* nothing on the old vector */

	/* MSI-X off again (pci=nomsi's path): INTx with the queue ISR bit. */
	msix_control(0);
	CHECK_EQ(vdev_capacity(&dev), cap);			/* config back at 20 */
	ioapic_route(dev.irq_line, VEC_DEV, true);
	write_irq(213, 0x29, 4);
	CHECK_EQ(isr_first[3], 1);
}

/*
 * Bad vector numbers, a queue past the device's, hostile table accesses,
 * a message to nowhere, and the config vector for NEEDS_RESET.
 */
static void case_msix_misuse(void)
{
	uint64_t t0;

	setup(ALL_F);
	msix_find();
	irq_setup_lapic();
	msix_control(MSIX_ENABLE);
	outw(dev.io + MSI_CONFIG_VECTOR, 2);			/* the table has 0 and 1 */
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), NO_VECTOR);
	outw(dev.io + MSI_CONFIG_VECTOR, 0x8000);
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), NO_VECTOR);
	outw(dev.io + VIRTIO_QUEUE_SEL, 1);			/* no queue 1 */
	outw(dev.io + MSI_QUEUE_VECTOR, 0);
	CHECK_EQ(inw(dev.io + MSI_QUEUE_VECTOR), NO_VECTOR);
	outw(dev.io + VIRTIO_QUEUE_SEL, 0);
	outw(dev.io + MSI_QUEUE_VECTOR, 0xfffe);
	CHECK_EQ(inw(dev.io + MSI_QUEUE_VECTOR), NO_VECTOR);

	/* Byte writes, the PBA and past the table change nothing. */
	msix_program(1, MSI_ADDR);
	*((volatile uint8_t *)msix_tbl + 16 + 8) = 0x55;	/* vector 1's data */
	CHECK_EQ(msix_tbl[4 + 2], VEC_DEV);
	msix_tbl[0x800 / 4] = 0xffffffff;
	CHECK_EQ(msix_pba(), 0);
	CHECK_EQ(msix_tbl[8], 0xffffffff);			/* no vector 2 */
	msix_tbl[8] = 0x1234;
	CHECK_EQ(msix_tbl[0xffc / 4], 0);

	/* No vector for the queue: completions without any interrupt. */
	write_polled(215, 0x2a);
	expect_no_irq(0);
	/* A message to an address that is no LAPIC: the VMM survives it. */
	msix_tbl[4] = 0x12345678;
	outw(dev.io + MSI_QUEUE_VECTOR, 1);
	CHECK_EQ(inw(dev.io + MSI_QUEUE_VECTOR), 1);
	write_polled(216, 0x2b);
	irq_count = 0;		/* whatever became of that message */

	/* A broken ring: NEEDS_RESET, announced on the config vector. */
	msix_program(0, MSI_ADDR);
	outw(dev.io + MSI_CONFIG_VECTOR, 0);
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), 0);
	dev.avail[1] = dev.avail_idx + dev.num + 1;
	vq_kick(&dev);
	t0 = rdtsc();
	while (!(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET))
		CHECK(rdtsc() - t0 < WAIT_LONG);
	wait_irqs(1);
	CHECK_EQ(isr_first[0], 0);
	/* A reset forgets both vectors. */
	vdev_reset(&dev);
	CHECK_EQ(inw(dev.io + MSI_CONFIG_VECTOR), NO_VECTOR);
	CHECK_EQ(inw(dev.io + MSI_QUEUE_VECTOR), NO_VECTOR);
}

/* ---- media limits ----------------------------------------------------------- */

static void case_ro(void)
{
	vdev_find(&dev);
	CHECK_EQ(dev.host_features, ALL_F | F_EVENT_IDX | F_RO);
	vdev_init(&dev, ALL_F | F_RO, RING0_ADDR);
	pat_fill(DATA_ADDR, 2, 0x21);
	CHECK_EQ(blk_req(&dev, T_OUT, 10, DATA_ADDR, 1024), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, 0, DATA_ADDR, 512), ST_IOERR);
	/* Also when the driver ignores RO (did not ack it). */
	vdev_init(&dev, ALL_F, RING1_ADDR);
	CHECK_EQ(blk_req(&dev, T_OUT, 10, DATA_ADDR, 512), ST_IOERR);
	/* Reads still work. */
	memset(P(DATA2_ADDR), DATA_FILL, 1024);
	CHECK_EQ(blk_req(&dev, T_IN, 10, DATA2_ADDR, 1024), ST_OK);
	CHECK(!all_fill(DATA2_ADDR, 1024));
	CHECK(!pat_ok(DATA2_ADDR, 1, 0x21));
}

static void case_range(void)
{
	uint64_t cap;

	setup(ALL_F);
	cap = expect_cap();			/* the window, not the file */
	pat_fill(DATA_ADDR, 2, 0x31);
	CHECK_EQ(blk_req(&dev, T_OUT, cap, DATA_ADDR, 512), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, cap - 1, DATA_ADDR, 1024), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, cap + 1024, DATA_ADDR, 512), ST_IOERR);
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	CHECK_EQ(blk_req(&dev, T_IN, cap, DATA2_ADDR, 512), ST_IOERR);
	CHECK(all_fill(DATA2_ADDR, 512));
	valid_rw(&dev, 10, 1, 0x33);
	valid_rw(&dev, cap - 1, 1, 0x34);
}

static void case_past_capacity(void)
{
	uint64_t cap;

	setup(ALL_F);
	cap = expect_cap();
	memset(P(DATA2_ADDR), DATA_FILL, 1024);
	CHECK_EQ(blk_req(&dev, T_IN, cap, DATA2_ADDR, 512), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_IN, cap - 1, DATA2_ADDR, 1024), ST_IOERR);
	CHECK(all_fill(DATA2_ADDR, 1024));
	pat_fill(DATA_ADDR, 2, 0x41);
	CHECK_EQ(blk_req(&dev, T_OUT, cap, DATA_ADDR, 512), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, cap - 1, DATA_ADDR, 1024), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, 0xffffffffULL, DATA_ADDR, 512), ST_IOERR);
	valid_rw(&dev, cap - 1, 1, 0x44);	/* the last sector is fine */
}

static void case_overflow64(void)
{
	static const uint64_t bad[] = {
		0x0080000000000000ULL,		/* * 512 wraps to byte 0 */
		0x0080000000000001ULL,		/* wraps to byte 512 */
		0x007fffffffffffffULL,		/* * 512 = 2^64 - 512 */
		0x7fffffffffffffffULL,
		0xffffffffffffffffULL,
	};
	unsigned int i;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 2, 0x51);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(blk_req(&dev, T_OUT, bad[i], DATA_ADDR, 512), ST_IOERR);
		CHECK_EQ(blk_req(&dev, T_OUT, bad[i], DATA_ADDR, 1024), ST_IOERR);
		memset(P(DATA2_ADDR), DATA_FILL, 512);
		CHECK_EQ(blk_req(&dev, T_IN, bad[i], DATA2_ADDR, 512), ST_IOERR);
		CHECK(all_fill(DATA2_ADDR, 512));
	}
	valid_rw(&dev, 1, 1, 0x55);
}

static void case_badlen(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 2, 0x61);
	CHECK_EQ(blk_req(&dev, T_OUT, 20, DATA_ADDR, 500), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_OUT, 20, DATA_ADDR, 513), ST_IOERR);
	/* 512 + 1 in two descriptors. */
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_OUT, 20), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA_ADDR, 512, D_NEXT, 2);
	set_desc(dev.desc, 2, DATA_ADDR + 512, 1, D_NEXT, 3);
	set_desc(dev.desc, 3, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 1);
	CHECK_EQ(*status, ST_IOERR);
	memset(P(DATA2_ADDR), DATA_FILL, 1024);
	CHECK_EQ(blk_req(&dev, T_IN, 20, DATA2_ADDR, 256), ST_IOERR);
	CHECK_EQ(blk_req(&dev, T_IN, 20, DATA2_ADDR, 1000), ST_IOERR);
	CHECK(all_fill(DATA2_ADDR, 1024));
	valid_rw(&dev, 21, 1, 0x66);
}

static void case_unknown_type(void)
{
	static const uint32_t types[] = { 2, 3, 6, 11, 13, 14, 0x77, 0x80000001, 0xffffffff };
	unsigned int i;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0x71);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		/* Readable data (as a write would have it)... */
		CHECK_EQ(blk_req(&dev, types[i], 30, DATA_ADDR, 512), ST_UNSUPP);
		/* ...and writable data (as a read would). */
		memset(P(DATA2_ADDR), DATA_FILL, 512);
		*status = ST_SENTINEL;
		set_desc(dev.desc, 0, hdr_at(0, types[i], 30), 16, D_NEXT, 1);
		set_desc(dev.desc, 1, DATA2_ADDR, 512, D_NEXT | D_WRITE, 2);
		set_desc(dev.desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
		submit(0, 1);
		CHECK_EQ(*status, ST_UNSUPP);
		CHECK(all_fill(DATA2_ADDR, 512));
	}
	valid_rw(&dev, 31, 1, 0x77);
}

/* ---- malformed chains --------------------------------------------------------- */

static void case_short_header(void)
{
	static const uint32_t lens[] = { 8, 15, 1 };
	unsigned int i;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0x81);
	for (i = 0; i < 3; i++) {
		*status = ST_SENTINEL;
		out_chain(10, 40, DATA_ADDR, 512);
		dev.desc[10].len = lens[i];
		submit(10, 1);
		CHECK_EQ(*status, ST_IOERR);
	}
	/* Short IN header: the read buffer stays untouched. */
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 10, hdr_at(10, T_IN, 40), 12, D_NEXT, 11);
	set_desc(dev.desc, 11, DATA2_ADDR, 512, D_NEXT | D_WRITE, 12);
	set_desc(dev.desc, 12, STATUS_ADDR, 1, D_WRITE, 0);
	submit(10, 1);
	CHECK_EQ(*status, ST_IOERR);
	CHECK(all_fill(DATA2_ADDR, 512));
	valid_rw(&dev, 41, 1, 0x88);
}

static void case_status_readonly(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0x91);
	/* Write whose "status" is device-readable: no status byte at all. */
	out_chain(10, 50, DATA_ADDR, 512);
	dev.desc[12].flags = 0;
	expect_needs_reset(10);
	/* Read whose status is readable after a writable buffer: bad order. */
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	set_desc(dev.desc, 20, hdr_at(20, T_IN, 50), 16, D_NEXT, 21);
	set_desc(dev.desc, 21, DATA2_ADDR, 512, D_NEXT | D_WRITE, 22);
	set_desc(dev.desc, 22, STATUS_ADDR, 1, 0, 0);
	expect_needs_reset(20);
	CHECK(all_fill(DATA2_ADDR, 512));
	/* Header writable, data readable after it: bad order, status fine. */
	out_chain(30, 50, DATA_ADDR, 512);
	dev.desc[30].flags |= D_WRITE;
	expect_ioerr(30);
	/* Read with a readable buffer between its data and its status. */
	set_desc(dev.desc, 20, hdr_at(20, T_IN, 50), 16, D_NEXT, 21);
	set_desc(dev.desc, 21, DATA2_ADDR, 512, D_NEXT | D_WRITE, 23);
	set_desc(dev.desc, 23, DATA_ADDR, 16, D_NEXT, 22);
	set_desc(dev.desc, 22, STATUS_ADDR, 1, D_WRITE, 0);
	expect_ioerr(20);
	CHECK(all_fill(DATA2_ADDR, 512));
	valid_rw(&dev, 51, 1, 0x99);
}

static void case_status_zero_len(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xa1);
	/* Write with a zero-length status descriptor: no status byte. */
	out_chain(10, 60, DATA_ADDR, 512);
	dev.desc[12].len = 0;
	expect_needs_reset(10);
	/* The same in a chain refused for its data (outside RAM). */
	out_chain(10, 60, g_ram_end, 512);
	dev.desc[12].len = 0;
	expect_needs_reset(10);
	/*
	 * Read with a zero-length status: the status byte is the last
	 * writable byte, here the data buffer's last; 511 data bytes are not
	 * whole sectors, so IOERR lands there and nothing else is written.
	 */
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 20, hdr_at(20, T_IN, 60), 16, D_NEXT, 21);
	set_desc(dev.desc, 21, DATA2_ADDR, 512, D_NEXT | D_WRITE, 22);
	set_desc(dev.desc, 22, STATUS_ADDR, 0, D_WRITE, 0);
	submit(20, 1);
	CHECK_EQ(*status, ST_SENTINEL);
	CHECK(all_fill(DATA2_ADDR, 511));
	CHECK_EQ(*(volatile uint8_t *)P(DATA2_ADDR + 511), ST_IOERR);
	valid_rw(&dev, 61, 1, 0xaa);
}

static void case_chain_loop(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 2, 0xb1);
	/* 10 -> 11 -> 12 -> 10 ... (readable only, never ends). */
	set_desc(dev.desc, 10, hdr_at(10, T_OUT, 70), 16, D_NEXT, 11);
	set_desc(dev.desc, 11, DATA_ADDR, 512, D_NEXT, 12);
	set_desc(dev.desc, 12, DATA_ADDR + 512, 512, D_NEXT, 10);
	expect_needs_reset(10);
	/* A descriptor pointing at itself. */
	set_desc(dev.desc, 13, hdr_at(13, T_OUT, 70), 16, D_NEXT, 13);
	expect_needs_reset(13);
	/* A loop through writable descriptors only: hdr -> st -> st -> ... */
	set_desc(dev.desc, 14, hdr_at(14, T_OUT, 70), 16, D_NEXT, 15);
	set_desc(dev.desc, 15, STATUS_ADDR, 1, D_NEXT | D_WRITE, 15);
	expect_needs_reset(14);
	/* A loop after a buffer outside RAM: still no end to find. */
	set_desc(dev.desc, 16, hdr_at(16, T_OUT, 70), 16, D_NEXT, 17);
	set_desc(dev.desc, 17, g_ram_end, 512, D_NEXT, 18);
	set_desc(dev.desc, 18, STATUS_ADDR, 1, D_NEXT | D_WRITE, 16);
	expect_needs_reset(16);
	valid_rw(&dev, 71, 1, 0xbb);
}

static void case_next_oob(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xc1);
	out_chain(10, 80, DATA_ADDR, 512);
	dev.desc[11].next = dev.num;		/* one past the table */
	expect_needs_reset(10);
	out_chain(10, 80, DATA_ADDR, 512);
	dev.desc[11].next = 0xffff;
	expect_needs_reset(10);
	out_chain(10, 80, DATA_ADDR, 512);
	dev.desc[10].next = dev.num + 5;
	expect_needs_reset(10);
	/* The status itself links out of the table: it is not the end. */
	out_chain(10, 80, DATA_ADDR, 512);
	dev.desc[12].flags |= D_NEXT;
	dev.desc[12].next = dev.num;
	expect_needs_reset(10);
	valid_rw(&dev, 81, 1, 0xcc);
}

/* ---- indirect descriptors ------------------------------------------------------ */

static volatile struct vring_desc *const table = (volatile struct vring_desc *)TABLE_ADDR;
static volatile struct vring_desc *const table2 = (volatile struct vring_desc *)(TABLE_ADDR + 0x1000);

static void indirect_out(volatile struct vring_desc *t, uint64_t sector)
{
	set_desc(t, 0, hdr_at(40, T_OUT, sector), 16, D_NEXT, 1);
	set_desc(t, 1, DATA_ADDR, 512, D_NEXT, 2);
	set_desc(t, 2, STATUS_ADDR, 1, D_WRITE, 0);
}

static void case_indirect_ok(void)
{
	setup(ALL_F);
	CHECK(inl(dev.io + VIRTIO_GUEST_FEATURES) & F_INDIRECT);
	pat_fill(DATA_ADDR, 1, 0xdd);
	indirect_out(table, 90);
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT, 0);
	*status = ST_SENTINEL;
	submit(5, 1);
	CHECK_EQ(*status, ST_OK);
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	set_desc(table2, 0, hdr_at(41, T_IN, 90), 16, D_NEXT, 1);
	set_desc(table2, 1, DATA2_ADDR, 512, D_NEXT | D_WRITE, 2);
	set_desc(table2, 2, STATUS_ADDR, 1, D_WRITE, 0);
	set_desc(dev.desc, 6, TABLE_ADDR + 0x1000, 48, D_INDIRECT, 0);
	*status = ST_SENTINEL;
	submit(6, 513);
	CHECK_EQ(*status, ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 1, 0xdd));
}

static void case_indirect_loop(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xe1);
	/* Table entries 0 -> 1 -> 0 ... */
	indirect_out(table, 110);
	table[1].next = 0;
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT, 0);
	expect_needs_reset(5);
	/* Entry 0 -> 0. */
	indirect_out(table, 110);
	table[0].next = 0;
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT, 0);
	expect_needs_reset(5);
	/* next beyond the table (3 entries). */
	indirect_out(table, 110);
	table[1].next = 3;
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT, 0);
	expect_needs_reset(5);
	/* A bad buffer inside the table, its status fine. */
	indirect_out(table, 110);
	table[1].addr = g_ram_end;
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT, 0);
	expect_ioerr(5);
	valid_rw(&dev, 111, 1, 0x12);
}

static void case_indirect_nested(void)
{
	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xe2);
	/* Table entry 1 is itself indirect. */
	indirect_out(table2, 120);
	set_desc(table, 0, hdr_at(40, T_OUT, 120), 16, D_NEXT, 1);
	set_desc(table, 1, TABLE_ADDR + 0x1000, 48, D_INDIRECT, 0);
	set_desc(dev.desc, 5, TABLE_ADDR, 32, D_INDIRECT, 0);
	expect_needs_reset(5);
	/* Entry 0 of the table is indirect. */
	set_desc(table, 0, TABLE_ADDR + 0x1000, 48, D_INDIRECT, 0);
	set_desc(dev.desc, 5, TABLE_ADDR, 16, D_INDIRECT, 0);
	expect_needs_reset(5);
	/* INDIRECT | NEXT on the head. */
	indirect_out(table, 120);
	set_desc(dev.desc, 5, TABLE_ADDR, 48, D_INDIRECT | D_NEXT, 6);
	set_desc(dev.desc, 6, STATUS_ADDR, 1, D_WRITE, 0);
	expect_needs_reset(5);
	/* An indirect descriptor in the middle of a direct chain. */
	set_desc(dev.desc, 7, hdr_at(7, T_OUT, 120), 16, D_NEXT, 8);
	set_desc(dev.desc, 8, TABLE_ADDR + 16, 32, D_INDIRECT, 0);
	expect_needs_reset(7);
	valid_rw(&dev, 121, 1, 0x13);
}

static void case_indirect_badlen(void)
{
	static const uint32_t lens[] = { 40, 47, 0, 8, 16 * 1025 };
	unsigned int i;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xe3);
	indirect_out(table, 125);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		set_desc(dev.desc, 5, TABLE_ADDR, lens[i], D_INDIRECT, 0);
		expect_needs_reset(5);
	}
	/* The table outside RAM, or straddling its end. */
	set_desc(dev.desc, 5, g_ram_end, 48, D_INDIRECT, 0);
	expect_needs_reset(5);
	set_desc(dev.desc, 5, g_ram_end - 32, 48, D_INDIRECT, 0);
	expect_needs_reset(5);
	valid_rw(&dev, 126, 1, 0x14);
}

/* ---- guest addresses ------------------------------------------------------------- */

static void case_addr_outside(void)
{
	const uint64_t bad[] = {
		g_ram_end, g_ram_end + 0x100000, 0xfec00000ULL /* IOAPIC */,
		0xc0000000ULL /* PCI hole */, 1ULL << 40, 0xfffffffffffff000ULL,
	};
	unsigned int i;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xf1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out_chain(10, 130, DATA_ADDR, 512);
		dev.desc[11].addr = bad[i];		/* data */
		expect_ioerr(10);
		out_chain(10, 130, DATA_ADDR, 512);
		dev.desc[10].addr = bad[i];		/* header */
		expect_ioerr(10);
		/* IN into memory that is not there. */
		set_desc(dev.desc, 20, hdr_at(20, T_IN, 130), 16, D_NEXT, 21);
		set_desc(dev.desc, 21, bad[i], 512, D_NEXT | D_WRITE, 22);
		set_desc(dev.desc, 22, STATUS_ADDR, 1, D_WRITE, 0);
		expect_ioerr(20);
		out_chain(10, 130, DATA_ADDR, 512);
		dev.desc[12].addr = bad[i];		/* status */
		expect_needs_reset(10);
	}
	valid_rw(&dev, 131, 1, 0x15);
}

static void case_addr_straddle(void)
{
	uint64_t end = g_ram_end;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0xf2);
	out_chain(10, 140, end - 256, 512);		/* data crosses the end */
	expect_ioerr(10);
	out_chain(10, 140, DATA_ADDR, 512);
	dev.desc[10].addr = end - 8;			/* header crosses */
	expect_ioerr(10);
	out_chain(10, 140, 0xffffffffffffff00ULL, 512);	/* addr + len wraps */
	expect_ioerr(10);
	/* IN whose data crosses the end: the part in RAM is not written. */
	memset(P(end - 511), DATA_FILL, 511);
	set_desc(dev.desc, 20, hdr_at(20, T_IN, 140), 16, D_NEXT, 21);
	set_desc(dev.desc, 21, end - 511, 512, D_NEXT | D_WRITE, 22);
	set_desc(dev.desc, 22, STATUS_ADDR, 1, D_WRITE, 0);
	expect_ioerr(20);
	CHECK(all_fill(end - 511, 511));
	/* The status crosses the end: its last byte is not RAM. */
	out_chain(10, 140, DATA_ADDR, 512);
	dev.desc[12].addr = end - 1;
	dev.desc[12].len = 2;
	expect_needs_reset(10);
	/* The status wraps past 2^64. */
	out_chain(10, 140, DATA_ADDR, 512);
	dev.desc[12].addr = 0xffffffffffffffffULL;
	dev.desc[12].len = 2;
	expect_needs_reset(10);
	/* The very last bytes of RAM are fine. */
	valid_rw(&dev, 141, 1, 0x16);
	memset(P(end - 512), DATA_FILL, 512);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 20, hdr_at(20, T_IN, 141), 16, D_NEXT, 21);
	set_desc(dev.desc, 21, end - 512, 512, D_NEXT | D_WRITE, 22);
	set_desc(dev.desc, 22, STATUS_ADDR, 1, D_WRITE, 0);
	submit(20, 513);
	CHECK_EQ(*status, ST_OK);
	CHECK(pat_ok(end - 512, 1, 0x16));
}

/* ---- transport -------------------------------------------------------------------- */

static void case_pfn_outside(void)
{
	const uint64_t bad[] = {
		g_ram_end >> 12,		/* just past RAM */
		(g_ram_end >> 12) - 1,		/* ring straddles the end */
		0xfec00,			/* IOAPIC page */
		0xfffff,			/* last page below 4 GiB */
		0xffffffff,			/* 64-bit shift: far above */
		0x100000,			/* 4 GiB: a 32-bit shift would make it 0 */
	};
	unsigned int i;

	vdev_find(&dev);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vdev_reset(&dev);
		outb(dev.io + VIRTIO_STATUS, S_ACK | S_DRIVER);
		outl(dev.io + VIRTIO_GUEST_FEATURES, ALL_F);
		outw(dev.io + VIRTIO_QUEUE_SEL, 0);
		outl(dev.io + VIRTIO_QUEUE_PFN, (uint32_t)bad[i]);
		CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), 0);
		CHECK(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET);
		outb(dev.io + VIRTIO_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
		CHECK(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET);	/* sticky */
		vq_kick(&dev);						/* harmless */
	}
	vdev_init(&dev, ALL_F, RING0_ADDR);	/* the reset clears NEEDS_RESET */
	valid_rw(&dev, 151, 1, 0x17);
}

/* Queues the device does not have: size 0, a PFN that does not stick, a kick. */
static void no_such_queues(const uint16_t *qs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		outw(dev.io + VIRTIO_QUEUE_SEL, qs[i]);
		CHECK_EQ(inw(dev.io + VIRTIO_QUEUE_NUM), 0);
		outl(dev.io + VIRTIO_QUEUE_PFN, RING1_ADDR >> 12);
		CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), 0);
		outw(dev.io + VIRTIO_QUEUE_NOTIFY, qs[i]);
	}
}

static void case_notify_bad_queue(void)
{
	static const uint16_t qs[] = { 1, 2, 7, 0x7fff, 0xffff };

	setup(ALL_F);
	no_such_queues(qs, sizeof(qs) / sizeof(qs[0]));
	outw(dev.io + VIRTIO_QUEUE_SEL, 0);
	CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), RING0_ADDR >> 12);
	CHECK_EQ(inb(dev.io + VIRTIO_STATUS), S_ACK | S_DRIVER | S_DRIVER_OK);
	CHECK_EQ(vq_used_idx(&dev), 0);
	valid_rw(&dev, 161, 1, 0x18);
}

/*
 * Two queues (mq=2): MQ offered and num_queues 2; queues past it do not
 * exist; a kick for queue 1 before it is set up does nothing; once set
 * up, a write on queue 1 reads back on queue 0; a reset takes both down.
 */
static void case_mq_misuse(void)
{
	static const uint16_t qs[] = { 2, 3, 16, 0x7fff, 0xffff };
	struct vdev dev1;
	unsigned int i;

	vdev_find(&dev);
	CHECK(dev.host_features & F_MQ);
	CHECK_EQ(inw(dev.io + VIRTIO_CONFIG + 34), 2);		/* num_queues */
	vdev_init(&dev, ALL_F | F_MQ, RING0_ADDR);
	no_such_queues(qs, sizeof(qs) / sizeof(qs[0]));
	/* Queue 1 exists but was never set up: its kick finds no ring. */
	outw(dev.io + VIRTIO_QUEUE_SEL, 1);
	CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), 0);
	outw(dev.io + VIRTIO_QUEUE_NOTIFY, 1);
	CHECK_EQ(inb(dev.io + VIRTIO_STATUS), S_ACK | S_DRIVER | S_DRIVER_OK);
	valid_rw(&dev, 217, 1, 0x2d);

	dev1 = dev;
	vdev_setup_queue(&dev1, 1, RING1_ADDR);
	pat_fill(DATA_ADDR, 1, 0x2e);
	CHECK_EQ(blk_req(&dev1, T_OUT, 218, DATA_ADDR, 512), ST_OK);
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	CHECK_EQ(blk_req(&dev, T_IN, 218, DATA2_ADDR, 512), ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 1, 0x2e));
	CHECK_EQ(blk_req(&dev1, T_FLUSH, 0, 0, 0), ST_OK);
	CHECK_EQ(vq_used_idx(&dev), 3);	/* valid_rw's two, and the read */
	CHECK_EQ(vq_used_idx(&dev1), 2);

	vdev_reset(&dev);
	for (i = 0; i < 2; i++) {
		outw(dev.io + VIRTIO_QUEUE_SEL, i);
		CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), 0);
	}
}

static void case_avail_jump(void)
{
	uint64_t t0;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0x1a);
	out_chain(0, 170, DATA_ADDR, 512);
	dev.avail[2] = 0;
	barrier();
	dev.avail[1] = dev.num + 1;		/* more new entries than the ring has */
	vq_kick(&dev);
	t0 = rdtsc();
	while (!(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET))
		CHECK(rdtsc() - t0 < WAIT_LONG);
	CHECK(inb(dev.io + VIRTIO_ISR) & 2);	/* config-change interrupt cause */
	CHECK_EQ(vq_used_idx(&dev), 0);
	/* A sane index now: the device must stay stopped until reset. */
	dev.avail[1] = 1;
	vq_kick(&dev);
	CHECK(!vq_wait(&dev, WAIT_SHORT));
	CHECK(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET);
	vdev_init(&dev, ALL_F, RING1_ADDR);
	valid_rw(&dev, 171, 1, 0x1b);
}

#define INFLIGHT 16

static void case_reset_inflight(void)
{
	volatile uint8_t *st = P(STATUS_ADDR + 64);
	unsigned int i, done = 0;
	uint16_t u0;

	setup(ALL_F);
	for (i = 0; i < INFLIGHT; i++) {
		pat_fill(DATA_ADDR + 512 * i, 1, 0x20 + i);
		st[i] = ST_SENTINEL;
		set_desc(dev.desc, 3 * i, hdr_at(3 * i, T_OUT, 180 + i), 16, D_NEXT, 3 * i + 1);
		set_desc(dev.desc, 3 * i + 1, DATA_ADDR + 512 * i, 512, D_NEXT, 3 * i + 2);
		set_desc(dev.desc, 3 * i + 2, STATUS_ADDR + 64 + i, 1, D_WRITE, 0);
		vq_post(&dev, 3 * i);
	}
	vq_kick(&dev);
	vdev_reset(&dev);		/* returns once the device has let go */
	u0 = vq_used_idx(&dev);
	CHECK(u0 <= INFLIGHT);
	/* Nothing touches the old ring after the reset. */
	{
		uint64_t t0 = rdtsc();

		while (rdtsc() - t0 < WAIT_SHORT)
			;
	}
	CHECK_EQ(vq_used_idx(&dev), u0);
	for (i = 0; i < INFLIGHT; i++) {
		if (st[i] == ST_SENTINEL)
			continue;
		CHECK_EQ(st[i], ST_OK);
		done++;
	}
	CHECK_EQ(done, u0);		/* exactly the completed ones have a status */
	for (i = 0; i < u0; i++)
		vq_complete(&dev, *(volatile uint32_t *)(dev.used + 4 + 8 * i), 1);
	gprintf("guest: reset_inflight: %u of %u completed before the reset\n", u0, INFLIGHT);
	vdev_init(&dev, ALL_F, RING1_ADDR);
	valid_rw(&dev, 199, 1, 0x5a);
}

/* Header and data in one descriptor (the device does not need ANY_LAYOUT for it). */
static void case_any_layout(void)
{
	setup(ALL_F);
	hdr_at(0, T_OUT, 5);
	memcpy(P(DATA_ADDR), P(HDR_ADDR), 16);
	pat_fill(DATA_ADDR + 16, 2, 0x1c);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, DATA_ADDR, 16 + 1024, D_NEXT, 1);
	set_desc(dev.desc, 1, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 1);
	CHECK_EQ(*status, ST_OK);
	/* Read back with data and status in one writable descriptor. */
	memset(P(DATA2_ADDR), DATA_FILL, 1025);
	set_desc(dev.desc, 0, hdr_at(0, T_IN, 5), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA2_ADDR, 1025, D_WRITE, 0);
	submit(0, 1025);
	CHECK(pat_ok(DATA2_ADDR, 2, 0x1c));
	CHECK_EQ(*(volatile uint8_t *)P(DATA2_ADDR + 1024), ST_OK);
}


/* A head index beyond the queue in the avail ring: the ring is broken. */
static void case_avail_bad_head(void)
{
	uint64_t t0;

	setup(ALL_F);
	pat_fill(DATA_ADDR, 1, 0x1d);
	out_chain(0, 175, DATA_ADDR, 512);
	vq_post(&dev, dev.num + 3);
	vq_kick(&dev);
	t0 = rdtsc();
	while (!(inb(dev.io + VIRTIO_STATUS) & S_NEEDS_RESET))
		CHECK(rdtsc() - t0 < WAIT_LONG);
	CHECK_EQ(vq_used_idx(&dev), 0);
	vq_post(&dev, 0);			/* a good one after it: not served */
	vq_kick(&dev);
	CHECK(!vq_wait(&dev, WAIT_SHORT));
	vdev_init(&dev, ALL_F, RING1_ADDR);
	valid_rw(&dev, 176, 1, 0x1e);
}

/* Register misuse: read-only registers, features after DRIVER_OK, PFN while live. */
static void case_regs_misuse(void)
{
	uint32_t feat;

	setup(ALL_F);
	feat = inl(dev.io + VIRTIO_GUEST_FEATURES);
	outl(dev.io + VIRTIO_HOST_FEATURES, 0);
	CHECK_EQ(inl(dev.io + VIRTIO_HOST_FEATURES), dev.host_features);
	outw(dev.io + VIRTIO_QUEUE_NUM, 4);
	CHECK_EQ(inw(dev.io + VIRTIO_QUEUE_NUM), dev.num);
	outl(dev.io + VIRTIO_GUEST_FEATURES, 0);		/* after DRIVER_OK */
	CHECK_EQ(inl(dev.io + VIRTIO_GUEST_FEATURES), feat);
	outl(dev.io + VIRTIO_QUEUE_PFN, RING1_ADDR >> 12);	/* moving a live ring */
	CHECK_EQ(inl(dev.io + VIRTIO_QUEUE_PFN), RING0_ADDR >> 12);
	outb(dev.io + VIRTIO_ISR, 0xff);			/* read-only */
	outw(dev.io + VIRTIO_STATUS, 0);			/* wrong width: ignored */
	outl(dev.io + VIRTIO_QUEUE_SEL, 0x10000);		/* wrong width: ignored */
	CHECK_EQ(inb(dev.io + VIRTIO_STATUS), S_ACK | S_DRIVER | S_DRIVER_OK);
	CHECK_EQ(inw(dev.io + VIRTIO_QUEUE_SEL), 0);
	/* Config space is read-only apart from wce; writes elsewhere are dropped. */
	outl(dev.io + VIRTIO_CONFIG, 0x12345678);
	CHECK_EQ(vdev_capacity(&dev), 2048);
	/* Beyond config: reads all ones. */
	CHECK_EQ(inb(dev.io + VIRTIO_CONFIG + 60), 0xff);
	valid_rw(&dev, 177, 1, 0x1f);
}

/* Many requests in flight at once, several rounds (the index wraps the ring). */
#define BATCH 20
static void case_batch(void)
{
	volatile uint8_t *st = P(STATUS_ADDR + 64);
	unsigned int r, i, n, seen;
	volatile uint32_t *e;

	setup(ALL_F);
	CHECK(dev.num >= 3 * BATCH);
	for (r = 0; r < 8; r++) {
		for (i = 0; i < BATCH; i++) {
			unsigned int sec = 300 + (r % 4) * BATCH + i;

			pat_fill(DATA_ADDR + 512 * i, 1, 0x40 + (r % 4) * BATCH + i);
			st[i] = ST_SENTINEL;
			set_desc(dev.desc, 3 * i, hdr_at(3 * i, T_OUT, sec), 16, D_NEXT, 3 * i + 1);
			set_desc(dev.desc, 3 * i + 1, DATA_ADDR + 512 * i, 512, D_NEXT, 3 * i + 2);
			set_desc(dev.desc, 3 * i + 2, STATUS_ADDR + 64 + i, 1, D_WRITE, 0);
			vq_post(&dev, 3 * i);
		}
		vq_kick(&dev);
		seen = 0;
		for (n = 0; n < BATCH; n++) {
			CHECK(vq_wait(&dev, WAIT_LONG));
			e = (volatile uint32_t *)(dev.used + 4 + 8 * (dev.used_idx & (dev.num - 1)));
			CHECK(e[0] % 3 == 0 && e[0] < 3 * BATCH);
			CHECK(!(seen & (1u << (e[0] / 3))));	/* each head once */
			seen |= 1u << (e[0] / 3);
			CHECK_EQ(e[1], 1);
			dev.used_idx++;
		}
		for (i = 0; i < BATCH; i++)
			CHECK_EQ(st[i], ST_OK);
	}
	CHECK_EQ(vq_used_idx(&dev), 8 * BATCH);
	memset(P(DATA2_ADDR), DATA_FILL, 512 * BATCH);
	for (r = 0; r < 4; r++) {
		CHECK_EQ(blk_req(&dev, T_IN, 300 + r * BATCH, DATA2_ADDR, 512 * BATCH), ST_OK);
		for (i = 0; i < BATCH; i++)
			CHECK(pat_ok(DATA2_ADDR + 512 * i, 1, 0x40 + r * BATCH + i));
	}
}

/* ---- VIRTIO_RING_F_EVENT_IDX ----------------------------------------------------- */

#define EVIDX_N		24	/* sectors 600.. with patterns 0x70.. */
#define EVIDX_BATCH	8	/* sectors 630.. with patterns 0x90.. */

/* used_event follows avail->ring; avail_event follows used->ring. */
static volatile uint16_t *used_event(void)
{
	return &dev.avail[2 + dev.num];
}

static volatile uint16_t *avail_event(void)
{
	return (volatile uint16_t *)(dev.used + 4 + 8 * dev.num);
}

static bool need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/* Post head and kick only if avail_event asks for it (Linux's kick_prepare); true if kicked. */
static bool evidx_post(uint16_t head)
{
	uint16_t old = dev.avail_idx;

	vq_post(&dev, head);
	__asm__ __volatile__("mfence" ::: "memory");
	if (!need_event(*avail_event(), dev.avail_idx, old))
		return false;
	vq_kick(&dev);
	return true;
}

/* An idle device has published avail_event up to what it took: all of it. */
static void wait_avail_event(void)
{
	uint64_t t0 = rdtsc();

	while (*avail_event() != dev.avail_idx)
		CHECK(rdtsc() - t0 < WAIT_LONG);
}

/* vq_complete() with interrupts on: any the device raises is taken (and counted). */
static void evidx_complete(uint16_t head, int64_t len)
{
	__asm__ __volatile__("sti" ::: "memory");
	vq_complete(&dev, head, len);
	__asm__ __volatile__("cli" ::: "memory");
}

/*
 * A driver that acks EVENT_IDX and sets used_event far away, then polls
 * the used ring: requests complete, kicked only when avail_event says
 * so (which only works if the device keeps it up to date), and no
 * interrupt comes but the one the device's first decision may give,
 * also for a batch posted one by one.  Then used_event names the next
 * entry, and that completion interrupts.
 */
static void case_event_idx(void)
{
	volatile uint8_t *st = P(STATUS_ADDR + 64);
	unsigned int i, kicks = 0, irqs, seen;
	volatile uint32_t *e;

	vdev_find(&dev);
	CHECK(dev.host_features & F_EVENT_IDX);
	vdev_init(&dev, ALL_F | F_EVENT_IDX, RING0_ADDR);
	CHECK(inl(dev.io + VIRTIO_GUEST_FEATURES) & F_EVENT_IDX);
	pic_mask_all();
	idt_setup();
	lapic_enable();
	ioapic_route(dev.irq_line, VEC_DEV, true);

	*used_event() = 0x8000;
	for (i = 0; i < EVIDX_N; i++) {
		wait_avail_event();
		pat_fill(DATA_ADDR, 1, 0x70 + i);
		*status = ST_SENTINEL;
		out_chain(0, 600 + i, DATA_ADDR, 512);
		kicks += evidx_post(0);
		evidx_complete(0, 1);
		CHECK_EQ(*status, ST_OK);
	}
	CHECK_EQ(kicks, EVIDX_N);
	CHECK(irq_count <= 1);

	wait_avail_event();
	for (i = 0, kicks = 0; i < EVIDX_BATCH; i++) {
		pat_fill(DATA_ADDR + 512 * i, 1, 0x90 + i);
		st[i] = ST_SENTINEL;
		set_desc(dev.desc, 3 * i, hdr_at(3 * i, T_OUT, 630 + i), 16, D_NEXT, 3 * i + 1);
		set_desc(dev.desc, 3 * i + 1, DATA_ADDR + 512 * i, 512, D_NEXT, 3 * i + 2);
		set_desc(dev.desc, 3 * i + 2, STATUS_ADDR + 64 + i, 1, D_WRITE, 0);
		kicks += evidx_post(3 * i);
	}
	/*
	 * The first kicks; the others only if the device caught up (and
	 * went to sleep) in between, which here depends on timing.  What
	 * matters is that none is stranded.
	 */
	CHECK(kicks >= 1);
	gprintf("guest: event_idx: %u kicks for a batch of %u\n", kicks, EVIDX_BATCH);
	/* In any order, each head once, with interrupts on. */
	__asm__ __volatile__("sti" ::: "memory");
	for (i = 0, seen = 0; i < EVIDX_BATCH; i++) {
		CHECK(vq_wait(&dev, WAIT_LONG));
		e = (volatile uint32_t *)(dev.used + 4 + 8 * (dev.used_idx & (dev.num - 1)));
		CHECK(e[0] % 3 == 0 && e[0] < 3 * EVIDX_BATCH && !(seen & (1u << (e[0] / 3))));
		seen |= 1u << (e[0] / 3);
		CHECK_EQ(e[1], 1);
		dev.used_idx++;
	}
	__asm__ __volatile__("cli" ::: "memory");
	for (i = 0; i < EVIDX_BATCH; i++)
		CHECK_EQ(st[i], ST_OK);
	CHECK(irq_count <= 1);

	/* The next entry: its completion interrupts. */
	irqs = irq_count;
	*used_event() = dev.used_idx;
	__asm__ __volatile__("mfence" ::: "memory");
	memset(P(DATA2_ADDR), DATA_FILL, 512);
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_IN, 600), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, DATA2_ADDR, 512, D_NEXT | D_WRITE, 2);
	set_desc(dev.desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
	wait_avail_event();
	CHECK(evidx_post(0));
	wait_irqs(irqs + 1);
	vq_complete(&dev, 0, 513);
	CHECK_EQ(*status, ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 1, 0x70));
	CHECK(irqs < 4);
	CHECK_EQ(isr_first[irqs], 1);	/* a queue interrupt */
}

/*
 * Writeback I/O that never stops: the host sends SIGTERM in the middle of
 * it (tests/guest/cases.sh).  Sector 500 + j always gets pattern 0x60 + j,
 * so whatever was in flight, each sector must end up either untouched or
 * wholly that pattern, and tinyvmm must stop cleanly and flush.
 */
#define STORM_SECTORS 64

/* ---- DISCARD and WRITE_ZEROES ------------------------------------------------- */

#define SEG_ADDR	(DATA_ADDR + 0x40000)	/* segment arrays */

struct dwz_seg {
	uint64_t sector;
	uint32_t count;
	uint32_t flags;
};

/* n segments at SEG_ADDR, as one DISCARD/WRITE_ZEROES; its status. */
static uint8_t dwz(uint32_t type, const struct dwz_seg *s, unsigned int n)
{
	memcpy(P(SEG_ADDR), s, n * sizeof(*s));
	return blk_req(&dev, type, 0, SEG_ADDR, n * sizeof(*s));
}

static uint8_t dwz1(uint32_t type, uint64_t sector, uint32_t count, uint32_t flags)
{
	struct dwz_seg s = { sector, count, flags };

	return dwz(type, &s, 1);
}

/* Whether nsect sectors at sector read back as zeros. */
static bool reads_zero(uint64_t sector, unsigned int nsect)
{
	const uint8_t *p = P(DATA2_ADDR);
	unsigned int i;

	memset(P(DATA2_ADDR), DATA_FILL, 512 * nsect);
	CHECK_EQ(blk_req(&dev, T_IN, sector, DATA2_ADDR, 512 * nsect), ST_OK);
	for (i = 0; i < 512 * nsect; i++)
		if (p[i])
			return false;
	return true;
}

static void dwz_setup(void)
{
	vdev_find(&dev);
	CHECK_EQ(dev.host_features & (F_DISCARD | F_WRITE_ZEROES), F_DISCARD | F_WRITE_ZEROES);
	vdev_init(&dev, ALL_F | F_DISCARD | F_WRITE_ZEROES, RING0_ADDR);
}

/*
 * As Linux's driver uses them: the config fields, zeroes (with and
 * without unmap) that read back as zeros, a discard, several segments
 * in one request; the neighbours keep their data (the host checks the
 * image: the pattern, then zeros exactly where asked).
 */
static void case_dwz_driver(void)
{
	struct dwz_seg two[2] = { { 420, 2, 0 }, { 424, 2, 0 } };

	dwz_setup();
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 36), 1u << 22);	/* max_discard_sectors */
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 40), 16);		/* max_discard_seg */
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 44), 1);		/* discard_sector_alignment */
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 48), 1u << 22);	/* max_write_zeroes_sectors */
	CHECK_EQ(inl(dev.io + VIRTIO_CONFIG + 52), 16);		/* max_write_zeroes_seg */
	CHECK_EQ(inb(dev.io + VIRTIO_CONFIG + 56), 1);		/* write_zeroes_may_unmap */
	valid_rw(&dev, 400, 16, 0x23);
	valid_rw(&dev, 420, 8, 0x24);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 402, 2, 0), ST_OK);
	CHECK_EQ(dwz1(T_DISCARD, 406, 4, 0), ST_OK);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 412, 2, DWZ_F_UNMAP), ST_OK);
	CHECK_EQ(dwz(T_DISCARD, two, 2), ST_OK);
	CHECK(reads_zero(402, 2));
	CHECK(reads_zero(406, 4));
	CHECK(reads_zero(412, 2));
	CHECK(reads_zero(420, 2));
	CHECK(reads_zero(424, 2));
	memset(P(DATA2_ADDR), DATA_FILL, 1024);
	CHECK_EQ(blk_req(&dev, T_IN, 400, DATA2_ADDR, 1024), ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 2, 0x23));
	CHECK_EQ(blk_req(&dev, T_FLUSH, 0, 0, 0), ST_OK);
}

/*
 * Hostile segments: each refuses its whole request and changes nothing.
 * Reserved flag bits and unmap on a DISCARD are UNSUPP (the spec's
 * words); too many segments, past the capacity, sector + count wrapping,
 * a count of 0 or past the maximum, a payload that is no whole number of
 * segments or sits in a device-writable buffer are IOERR; so are both
 * requests from a driver that did not accept the features.
 */
static void case_dwz_hostile(void)
{
	struct dwz_seg many[17];
	uint64_t cap;
	unsigned int i;

	dwz_setup();
	cap = expect_cap();
	valid_rw(&dev, 430, 4, 0x25);
	CHECK_EQ(dwz1(T_DISCARD, 430, 1, DWZ_F_UNMAP), ST_UNSUPP);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 430, 1, 2), ST_UNSUPP);
	CHECK_EQ(dwz1(T_DISCARD, 430, 1, 0x80000000u), ST_UNSUPP);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, cap, 1, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, cap - 1, 2, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_DISCARD, 0xfffffffffffffffcULL, 8, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_DISCARD, 0x0080000000000000ULL, 1, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_DISCARD, 430, 0, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 0, 0xffffffffu, 0), ST_IOERR);
	for (i = 0; i < 17; i++)
		many[i] = (struct dwz_seg){ 430 + (i & 3), 1, 0 };
	CHECK_EQ(dwz(T_DISCARD, many, 17), ST_IOERR);
	/* Fifteen good segments and one past the end: none is done. */
	many[15].sector = cap;
	CHECK_EQ(dwz(T_WRITE_ZEROES, many, 16), ST_IOERR);
	/* 24 bytes: a segment and a half. */
	CHECK_EQ(blk_req(&dev, T_WRITE_ZEROES, 0, SEG_ADDR, 24), ST_IOERR);
	/* The segment in a device-writable buffer: no payload to read. */
	((struct dwz_seg *)P(SEG_ADDR))[0] = (struct dwz_seg){ 430, 1, 0 };
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_DISCARD, 0), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, SEG_ADDR, 16, D_NEXT | D_WRITE, 2);
	set_desc(dev.desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 1);
	CHECK_EQ(*status, ST_IOERR);
	/* A driver that did not accept them. */
	vdev_init(&dev, ALL_F, RING1_ADDR);
	CHECK_EQ(dwz1(T_DISCARD, 430, 1, 0), ST_UNSUPP);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 430, 1, 0), ST_UNSUPP);
	memset(P(DATA2_ADDR), DATA_FILL, 2048);
	CHECK_EQ(blk_req(&dev, T_IN, 430, DATA2_ADDR, 2048), ST_OK);
	CHECK(pat_ok(DATA2_ADDR, 4, 0x25));
	/* One segment split over two descriptors is fine. */
	vdev_init(&dev, ALL_F | F_DISCARD | F_WRITE_ZEROES, RING0_ADDR);
	((struct dwz_seg *)P(SEG_ADDR))[0] = (struct dwz_seg){ 432, 2, 0 };
	*status = ST_SENTINEL;
	set_desc(dev.desc, 0, hdr_at(0, T_WRITE_ZEROES, 0), 16, D_NEXT, 1);
	set_desc(dev.desc, 1, SEG_ADDR, 5, D_NEXT, 2);
	set_desc(dev.desc, 2, SEG_ADDR + 5, 11, D_NEXT, 3);
	set_desc(dev.desc, 3, STATUS_ADDR, 1, D_WRITE, 0);
	submit(0, 1);
	CHECK_EQ(*status, ST_OK);
	CHECK(reads_zero(432, 2));
}

/* A read-only device offers neither and refuses both with IOERR. */
static void case_dwz_ro(void)
{
	vdev_find(&dev);
	CHECK_EQ(dev.host_features & (F_DISCARD | F_WRITE_ZEROES | F_RO), F_RO);
	vdev_init(&dev, ALL_F | F_RO, RING0_ADDR);
	CHECK_EQ(dwz1(T_DISCARD, 10, 1, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, 10, 1, 0), ST_IOERR);
}

/* range=: the window's edges; the host checks nothing outside changed. */
static void case_dwz_range(void)
{
	uint64_t cap;

	dwz_setup();
	cap = expect_cap();
	CHECK_EQ(dwz1(T_WRITE_ZEROES, cap - 1, 2, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_DISCARD, cap, 1, 0), ST_IOERR);
	CHECK_EQ(dwz1(T_WRITE_ZEROES, cap - 2, 2, DWZ_F_UNMAP), ST_OK);
	CHECK_EQ(dwz1(T_DISCARD, 0, 2, 0), ST_OK);
	CHECK(reads_zero(cap - 2, 2));
	CHECK(reads_zero(0, 2));
}

static void case_sigterm_storm(void)
{
	volatile uint8_t *st = P(STATUS_ADDR + 64);
	unsigned int r, i, n, sec;

	setup(ALL_F);
	CHECK(dev.num >= 3 * BATCH);
	for (i = 0; i < BATCH; i++)
		pat_fill(DATA_ADDR + 512 * i, 1, 0);
	for (r = 0;; r++) {
		for (i = 0; i < BATCH; i++) {
			sec = (r * BATCH + i) % STORM_SECTORS;
			pat_fill(DATA_ADDR + 512 * i, 1, 0x60 + sec);
			st[i] = ST_SENTINEL;
			set_desc(dev.desc, 3 * i, hdr_at(3 * i, T_OUT, 500 + sec), 16,
				 D_NEXT, 3 * i + 1);
			set_desc(dev.desc, 3 * i + 1, DATA_ADDR + 512 * i, 512, D_NEXT, 3 * i + 2);
			set_desc(dev.desc, 3 * i + 2, STATUS_ADDR + 64 + i, 1, D_WRITE, 0);
			vq_post(&dev, 3 * i);
		}
		vq_kick(&dev);
		for (n = 0; n < BATCH; n++) {
			CHECK(vq_wait(&dev, WAIT_LONG));
			dev.used_idx++;
		}
		for (i = 0; i < BATCH; i++)
			CHECK_EQ(st[i], ST_OK);
		if (r % 8 == 7)
			CHECK_EQ(blk_req(&dev, T_FLUSH, 0, 0, 0), ST_OK);
	}
}

/* ---------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "driver", case_driver },
	{ "get_id_short", case_get_id_short },
	{ "irq", case_irq },
	{ "msix", case_msix },
	{ "msix_misuse", case_msix_misuse },
	{ "ro", case_ro },
	{ "range", case_range },
	{ "past_capacity", case_past_capacity },
	{ "overflow64", case_overflow64 },
	{ "badlen", case_badlen },
	{ "unknown_type", case_unknown_type },
	{ "short_header", case_short_header },
	{ "status_readonly", case_status_readonly },
	{ "status_zero_len", case_status_zero_len },
	{ "chain_loop", case_chain_loop },
	{ "next_oob", case_next_oob },
	{ "indirect_ok", case_indirect_ok },
	{ "indirect_loop", case_indirect_loop },
	{ "indirect_nested", case_indirect_nested },
	{ "indirect_badlen", case_indirect_badlen },
	{ "addr_outside", case_addr_outside },
	{ "addr_straddle", case_addr_straddle },
	{ "pfn_outside", case_pfn_outside },
	{ "notify_bad_queue", case_notify_bad_queue },
	{ "mq_misuse", case_mq_misuse },
	{ "avail_jump", case_avail_jump },
	{ "reset_inflight", case_reset_inflight },
	{ "any_layout", case_any_layout },
	{ "avail_bad_head", case_avail_bad_head },
	{ "regs_misuse", case_regs_misuse },
	{ "batch", case_batch },
	{ "event_idx", case_event_idx },
	{ "dwz_driver", case_dwz_driver },
	{ "dwz_hostile", case_dwz_hostile },
	{ "dwz_ro", case_dwz_ro },
	{ "dwz_range", case_dwz_range },
	{ "sigterm_storm", case_sigterm_storm },
};

void guest_main(uint64_t start_info)
{
	char name[32];
	unsigned int i;

	boot_info(start_info);
	if (!cmdline_get("case", name, sizeof(name))) {
		gprintf("guest: no case= on the command line\n");
		guest_exit(EXIT_NOCASE);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strlen(cases[i].name) == strlen(name) &&
		    !memcmp(cases[i].name, name, strlen(name))) {
			cases[i].fn();
			guest_exit(EXIT_PASS);
		}
	}
	gprintf("guest: unknown case '%s'\n", name);
	guest_exit(EXIT_NOCASE);
}
