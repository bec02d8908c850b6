// SPDX-License-Identifier: MIT
/*
 * Fuzz harness for the legacy virtio PCI register file
 * (virtio_pci_bar_ops) over a fake device model, single-threaded.
 *
 * Input layout (short inputs are padded with zeros):
 *
 *	byte 0      queues: 1 + (b & 0x1f) % 16; bit 7: a resampling interrupt sink (a KVM
 *	            irqfd: the line drops at the guest's EOI) instead of a level
 *	            line; bit 6 with it: EOIs reported at delivery (PVM);
 *	            bit 5: MSI-X with a vector per queue and one for config
 *	byte 1      device config length: b % 233 (0..232)
 *	bytes 2-5   queue sizes: 1 << (b % 11) each, queue n taking byte 2 + n % 4
 *	bytes 6-9   host features (le32)
 *	then 8-byte operations:
 *	  op[0] & 7   0-2 read, 3-4 write, 5 device raises ISR bits 1 + op[2] % 3,
 *	              6 by op[2] % 6: device sets NEEDS_RESET / the guest's EOI
 *	              lowers a resampling line / the VMM reports that EOI /
 *	              the VMM's re-check of bits left at an early EOI / the
 *	              guest writes MSI-X's control word (op[4..5]) / the guest
 *	              reads (op[3] bit 0 clear) or writes the MSI-X table BAR
 *	              at op[1] * 4 + (op[3] >> 1) * 1024 (size as below),
 *	              7 guest stores op[4..7] at gpa (op[1] | op[2] << 8) * 4
 *	              mod 64 KiB
 *	  op[0] >> 3  access size: 1, 2, 4, 3 (odd), 8 (odd) by (b & 7) % 5
 *	  op[1]       BAR offset (accesses not wholly inside the BAR are
 *	              dropped, as the port bus drops them)
 *	  op[4..7]    value written (le32)
 *
 * Guest RAM (64 KiB) starts as a copy of the whole input.  The fake
 * device serves a notified queue by popping everything and completing
 * each request with length 0, then raising the queue interrupt.
 *
 * Checked: device config accesses stay inside config_len and are never
 * empty; no device callback runs with vp->lock held (the interrupt sink
 * always does); the interrupt contract: an assert only for an ISR edge
 * (0 to non-zero) no earlier assert announced, on a line that is down,
 * and no edge left unannounced once its line is down and its EOI
 * reported; a level line equals "ISR != 0" after every access; a
 * ready queue lies wholly in RAM with the size the device declared;
 * queue_ready/queue_notify name a ready queue; DRIVER_OK is reported on
 * the transition only; an MSI-X message goes out only for a vector the
 * table has, with MSI-X enabled and neither the function nor the vector
 * masked, and only after its route carries the entry's current message.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_pci.h"
#include "fuzz/harness.h"
#include "lib/guest_mem.h"
#include "lib/io_bus.h"
#include "lib/util.h"

#define FP_RAM_SIZE	(64 * 1024)
#define FP_HDR_SIZE	10
#define FP_OP_SIZE	8
#define FP_MAX_CONFIG	(256 - VIRTIO_PCI_CONFIG_OFF_MSIX)
#define FP_MAX_POPS	2048

#define FP_CHECK(cond)                                                                  \
	do {                                                                            \
		if (!(cond))                                                            \
			fp_fail(__LINE__, #cond);                                       \
	} while (0)

static struct {
	bool init;
	struct guest_mem gm;
	uint8_t *ram;
	struct virtio_pci vp;
	uint8_t cfg[FP_MAX_CONFIG];
	uint32_t config_len;
	bool line;
	bool resample;
	bool early_eoi;
	bool eoi_unreported;	/* resampling: the guest's EOI, not yet told */
	bool edge;		/* ISR went non-zero, no assert announced it yet */
	bool in_sink;
	bool msix;
	uint64_t routed_addr[MSIX_MAX_VECTORS];
	uint32_t routed_data[MSIX_MAX_VECTORS];
	struct virtq_elem e;
} fp;

static void __attribute__((noreturn)) fp_fail(int line, const char *what)
{
	fprintf(stderr, "fuzz pci harness: line %d: invariant broken: %s\n", line, what);
	abort();
}

/* A device callback must be able to take vp->lock (to raise the ISR). */
static void fp_check_unlocked(void)
{
	FP_CHECK(pthread_mutex_trylock(&fp.vp.lock) == 0);
	pthread_mutex_unlock(&fp.vp.lock);
}

static void fp_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	fp_check_unlocked();
	FP_CHECK(len > 0 && off <= fp.config_len && len <= fp.config_len - off);
	memcpy(buf, fp.cfg + off, len);
}

static void fp_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	fp_check_unlocked();
	FP_CHECK(len > 0 && off <= fp.config_len && len <= fp.config_len - off);
	memcpy(fp.cfg + off, buf, len);
}

static void fp_driver_ok(void *dev)
{
	fp_check_unlocked();
	FP_CHECK(fp.vp.status & VIRTIO_STATUS_DRIVER_OK);
}

static void fp_queue_ready(void *dev, unsigned int n)
{
	fp_check_unlocked();
	FP_CHECK(n < fp.vp.nr_queues && fp.vp.vq[n].ready);
}

/* The device's ways to set ISR bits, noting the edges they make. */
static void fp_raise(uint8_t bits)
{
	if (!fp.vp.isr)
		fp.edge = true;
	virtio_pci_raise_isr(&fp.vp, bits);
}

static void fp_needs_reset(void)
{
	if (!fp.vp.isr)
		fp.edge = true;
	virtio_pci_needs_reset(&fp.vp);
}

static void fp_queue_notify(void *dev, unsigned int n)
{
	struct virtq *q;
	enum virtq_pop_result r;
	unsigned int i, pops;

	fp_check_unlocked();
	FP_CHECK(n < fp.vp.nr_queues && fp.vp.vq[n].ready);
	q = &fp.vp.vq[n];
	for (pops = 0; pops < FP_MAX_POPS; pops++) {
		r = virtq_pop(q, &fp.e);
		if (r != VIRTQ_OK && r != VIRTQ_BAD_CHAIN)
			break;
		FP_CHECK(fp.e.head < q->num);
		for (i = 0; i < fp.e.nr_out + fp.e.nr_in; i++) {
			const uint8_t *p = fp.e.iov[i].iov_base;

			FP_CHECK(p >= fp.ram && p < fp.ram + FP_RAM_SIZE &&
				 fp.e.iov[i].iov_len <= (size_t)(fp.ram + FP_RAM_SIZE - p));
		}
		virtq_push(q, fp.e.head, 0);
	}
	if (q->broken) {
		fp_needs_reset();
	} else if (pops && !virtq_no_interrupt(q)) {
		/* INTx unless MSI-X is on: an edge if ISR was clear. */
		if (!fp.vp.isr && !(fp.msix && msix_enabled(&fp.vp.msix)))
			fp.edge = true;
		virtio_pci_notify_queue(&fp.vp, n);
	}
}

static void fp_reset(void *dev)
{
	fp_check_unlocked();
}

static void fp_queue_reset(void *dev, unsigned int n)
{
	fp_check_unlocked();
	/* Only a live ring is taken away through the device. */
	FP_CHECK(n < fp.vp.nr_queues && fp.vp.vq[n].ready);
}

static const struct virtio_dev_ops fp_ops = {
	.config_read = fp_config_read,
	.config_write = fp_config_write,
	.driver_ok = fp_driver_ok,
	.queue_ready = fp_queue_ready,
	.queue_notify = fp_queue_notify,
	.reset = fp_reset,
	.queue_reset = fp_queue_reset,
};

/*
 * One assert per edge, on a line that is down: never two interrupts for
 * one edge, never one with nothing in ISR.  A level line is lowered
 * with clearing ISR, under vp->lock.
 */
static void fp_assert_line(void *opaque)
{
	FP_CHECK(fp.vp.isr != 0);
	FP_CHECK(fp.edge);
	FP_CHECK(!fp.line);
	fp.edge = false;
	fp.line = true;
}

static void fp_deassert_line(void *opaque)
{
	FP_CHECK(!fp.resample);
	FP_CHECK(pthread_mutex_trylock(&fp.vp.lock) != 0);
	fp.line = false;
}

/* After an EOI (not an early one) bits still in ISR are announced again. */
static void fp_eoi_consumed(void)
{
	if (fp.vp.isr && !fp.early_eoi)
		fp.edge = true;
}

static bool fp_eoi_seen(void *opaque)
{
	bool seen = fp.eoi_unreported;

	fp.eoi_unreported = false;
	if (seen)
		fp_eoi_consumed();
	return seen;
}

static const struct virtio_irq fp_irq_level = {
	.assert_line = fp_assert_line,
	.deassert_line = fp_deassert_line,
};

static const struct virtio_irq fp_irq_resample = {
	.assert_line = fp_assert_line,
	.eoi_seen = fp_eoi_seen,
	.resample = true,
};

/* As vmm/virtio_kvm.c wires it on PVM hosts: the main loop takes every EOI. */
static const struct virtio_irq fp_irq_early = {
	.assert_line = fp_assert_line,
	.resample = true,
	.early_eoi = true,
};

/* Under the table's lock (the sink is called with it held). */
static void fp_msix_fire(void *opaque, unsigned int v)
{
	const struct msix *m = &fp.vp.msix;
	const struct msix_entry *e;

	FP_CHECK(v < m->nr);
	e = &m->table[v];
	FP_CHECK(m->enabled && !m->masked && !(e->ctrl & MSIX_ENTRY_CTRL_MASK));
	/* The route in place carries the entry's message (or it failed to change). */
	FP_CHECK(fp.routed_addr[v] == ((uint64_t)e->addr_hi << 32 | e->addr_lo) &&
		 fp.routed_data[v] == e->data);
}

static int fp_msix_route(void *opaque, unsigned int v, uint64_t addr, uint32_t data)
{
	FP_CHECK(v < fp.vp.msix.nr);
	fp.routed_addr[v] = addr;
	fp.routed_data[v] = data;
	return 0;
}

static const struct msix_sink fp_msix_sink = {
	.fire = fp_msix_fire, .route = fp_msix_route,
};

/* The guest's write of Message Control, as the PCI bus applies it (wmask) and reports it. */
static void fp_msix_control(uint16_t val)
{
	uint8_t *c = fp.vp.pci.cfg + fp.vp.msix_cap + MSIX_CAP_CONTROL;
	bool held = false;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fp.vp.msix.pba); i++)
		held |= fp.vp.msix.pba[i] != 0;
	/* Disabling with messages held raises them as INTx. */
	if (held && !(val & MSIX_CONTROL_ENABLE) && !fp.vp.isr)
		fp.edge = true;
	c[1] = (c[1] & 0x3f) | (val >> 8 & 0xc0);
	fp.vp.pci.cfg_write(&fp.vp.pci, fp.vp.msix_cap + MSIX_CAP_CONTROL, 2, val);
}

static void fp_msix_table(const uint8_t *op, unsigned int asz, uint32_t val)
{
	unsigned int off = (op[1] * 4 + (op[3] >> 1) * 1024) % MSIX_BAR_SIZE;

	if (off + asz > MSIX_BAR_SIZE || asz > 4)
		return;
	if (op[3] & 1)
		msix_bar_ops.write(&fp.vp.msix, off, asz, val);
	else
		(void)msix_bar_ops.read(&fp.vp.msix, off, asz);
}

/* op 6: NEEDS_RESET, or the EOI of a resampling line, its report, a re-check. */
static void fp_op_eoi(unsigned int what)
{
	if (what == 0 || !fp.resample) {
		fp_needs_reset();
	} else if (what == 1) {
		if (fp.line)
			fp.eoi_unreported = true;
		fp.line = false;
	} else if (what == 2) {
		if (!fp.eoi_unreported)
			return;
		fp.eoi_unreported = false;
		fp_eoi_consumed();
		virtio_pci_irq_eoi(&fp.vp);
	} else {
		/* Owed bits: an early EOI left them and no ISR read came since. */
		if (virtio_pci_irq_owed(&fp.vp) && fp.vp.isr)
			fp.edge = true;
		virtio_pci_irq_recheck(&fp.vp);
	}
}

static void fp_check_state(void)
{
	unsigned int n;

	/* An ISR read or a reset took the bits of a pending edge. */
	if (!fp.vp.isr)
		fp.edge = false;
	if (!fp.resample)
		FP_CHECK(fp.line == (fp.vp.isr != 0));
	/* An edge not announced yet waits for the EOI of the line that is up. */
	if (fp.edge)
		FP_CHECK(fp.resample && (fp.line || fp.eoi_unreported));
	for (n = 0; n < VIRTIO_MAX_QUEUES; n++) {
		const struct virtq *q = &fp.vp.vq[n];

		if (!q->ready)
			continue;
		FP_CHECK(n < fp.vp.nr_queues);
		FP_CHECK(q->num == fp.vp.queue_size[n]);
		FP_CHECK(gmem_ptr(&fp.gm, q->desc_gpa, virtq_legacy_size(q->num)));
	}
}

static uint32_t fp_bar_size(uint32_t config_len)
{
	uint32_t size = 32;

	while (size < VIRTIO_PCI_CONFIG_OFF_MSIX + config_len)
		size <<= 1;
	return size;
}

void fuzz_pci_fini(void)
{
	if (fp.init) {
		gmem_free(&fp.gm);
		fp.init = false;
	}
}

int fuzz_pci_one(const uint8_t *data, size_t size)
{
	static const unsigned int sizes[] = { 1, 2, 4, 3, 8 };
	uint8_t hdr[FP_HDR_SIZE] = { 0 };
	uint16_t qsize[VIRTIO_MAX_QUEUES];
	unsigned int nr_queues, i, asz;
	uint32_t host_features, bar_size, val;
	const uint8_t *op;
	size_t pos;

	if (!fp.init) {
		if (gmem_init(&fp.gm, FP_RAM_SIZE) || fp.gm.nr_regions != 1)
			fp_fail(__LINE__, "guest RAM set-up");
		fp.ram = fp.gm.region[0].hva;
		fp.init = true;
	}
	memcpy(hdr, data, MIN(size, sizeof(hdr)));
	nr_queues = 1 + (hdr[0] & 0x1f) % VIRTIO_MAX_QUEUES;
	fp.config_len = hdr[1] % (FP_MAX_CONFIG + 1);
	for (i = 0; i < nr_queues; i++)
		qsize[i] = 1u << (hdr[2 + i % 4] % 11);
	memcpy(&host_features, hdr + 6, sizeof(host_features));
	bar_size = fp_bar_size(fp.config_len);

	memset(fp.ram, 0, FP_RAM_SIZE);
	memcpy(fp.ram, data, MIN(size, (size_t)FP_RAM_SIZE));
	for (i = 0; i < FP_MAX_CONFIG; i++)
		fp.cfg[i] = (uint8_t)(0xa0 + i);
	fp.line = false;
	fp.edge = false;
	fp.eoi_unreported = false;
	fp.resample = hdr[0] & 0x80;
	fp.early_eoi = fp.resample && (hdr[0] & 0x40);

	FP_CHECK(virtio_pci_init(&fp.vp, "fuzz", 0x1001, 1, 2, host_features, fp.config_len,
				 nr_queues, qsize, &fp.gm, &fp_ops, NULL) == 0);
	virtio_pci_set_irq(&fp.vp, fp.early_eoi ? &fp_irq_early :
				   fp.resample ? &fp_irq_resample : &fp_irq_level);
	fp.msix = hdr[0] & 0x20;
	memset(fp.routed_addr, 0, sizeof(fp.routed_addr));
	memset(fp.routed_data, 0, sizeof(fp.routed_data));
	if (fp.msix) {
		FP_CHECK(virtio_pci_init_msix(&fp.vp, nr_queues + 1) == 0);
		virtio_pci_set_msix_sink(&fp.vp, &fp_msix_sink);
	}
	fp_check_state();

	for (pos = FP_HDR_SIZE; pos + FP_OP_SIZE <= size; pos += FP_OP_SIZE) {
		op = data + pos;
		asz = sizes[(op[0] >> 3 & 7) % ARRAY_SIZE(sizes)];
		memcpy(&val, op + 4, sizeof(val));
		switch (op[0] & 7) {
		case 0: case 1: case 2:
			if (op[1] + asz <= bar_size)
				(void)virtio_pci_bar_ops.read(&fp.vp, op[1], asz);
			break;
		case 3: case 4:
			if (op[1] + asz <= bar_size)
				virtio_pci_bar_ops.write(&fp.vp, op[1], asz, val);
			break;
		case 5:
			fp_raise(1 + op[2] % 3);
			break;
		case 6:
			if (op[2] % 6 < 4)
				fp_op_eoi(op[2] % 6);
			else if (fp.msix && op[2] % 6 == 4)
				fp_msix_control(val);
			else if (fp.msix)
				fp_msix_table(op, asz, val);
			break;
		case 7:
			FP_CHECK(gmem_write(&fp.gm, ((uint64_t)(op[1] | op[2] << 8) * 4) % FP_RAM_SIZE,
					   op + 4, 4) == 0);
			break;
		}
		fp_check_state();
	}
	virtio_pci_destroy(&fp.vp);
	return 0;
}
