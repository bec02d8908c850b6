// SPDX-License-Identifier: MIT
/*
 * The legacy register file driven as Linux's virtio_pci_legacy.c drives
 * it, with a fake device model behind it that records every callback and
 * checks that none of them runs with the transport's leaf lock held.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio_pci.h"
#include "lib/guest_mem.h"
#include "lib/io_bus.h"
#include "pci/pci.h"

#define RAM_SIZE	(16ULL << 20)
#define CONFIG_LEN	24
#define QSIZE		64
#define RING_PFN	0x10
#define HOST_FEATURES	((1u << 2) | (1u << 6) | (1u << 9) | (1u << 28))

#define MAX_ATTACH	16

struct attach_rec {
	bool attach;		/* false: detach */
	uint16_t port;
	unsigned int n;
	int efd;
};

struct fake {
	struct virtio_pci vp;
	struct guest_mem gm;
	uint8_t cfg[CONFIG_LEN];
	unsigned int driver_ok, reset, queue_ready[VIRTIO_MAX_QUEUES];
	unsigned int queue_reset[VIRTIO_MAX_QUEUES];
	unsigned int queue_notify[VIRTIO_MAX_QUEUES];
	unsigned int cfg_writes;
	uint32_t cfg_write_off, cfg_write_len;
	unsigned int locked_callbacks;	/* callbacks made with vp.lock held */
	bool queue_ready_at_reset;
	bool raise_during_reset;	/* reset waits for a "completion" */

	/* interrupt sink */
	bool line;
	unsigned int asserts, deasserts;
	unsigned int bad_level;		/* line down with ISR set */
	unsigned int late_asserts;	/* asserted with ISR 0 */
	unsigned int double_asserts;	/* asserted while already up */

	/* notify sink */
	struct attach_rec rec[MAX_ATTACH];
	unsigned int nr_rec;
	int attach_fail;
};

static void check_unlocked(struct fake *f)
{
	/* A device callback must be able to take vp.lock (raise the ISR). */
	if (pthread_mutex_trylock(&f->vp.lock) == 0)
		pthread_mutex_unlock(&f->vp.lock);
	else
		f->locked_callbacks++;
}

static void fake_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct fake *f = dev;

	check_unlocked(f);
	assert_true(off + len <= CONFIG_LEN);
	memcpy(buf, f->cfg + off, len);
}

static void fake_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct fake *f = dev;

	check_unlocked(f);
	assert_true(off + len <= CONFIG_LEN);
	memcpy(f->cfg + off, buf, len);
	f->cfg_writes++;
	f->cfg_write_off = off;
	f->cfg_write_len = len;
}

static void fake_driver_ok(void *dev)
{
	struct fake *f = dev;

	check_unlocked(f);
	f->driver_ok++;
}

static void fake_queue_ready(void *dev, unsigned int n)
{
	struct fake *f = dev;

	check_unlocked(f);
	assert_true(n < VIRTIO_MAX_QUEUES);
	/* Ready means usable: the ring is already set up. */
	assert_true(f->vp.vq[n].ready);
	f->queue_ready[n]++;
}

static void fake_queue_notify(void *dev, unsigned int n)
{
	struct fake *f = dev;

	check_unlocked(f);
	assert_true(n < VIRTIO_MAX_QUEUES);
	f->queue_notify[n]++;
}

static void *completion_thread(void *arg)
{
	struct fake *f = arg;

	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	return NULL;
}

static void fake_reset(void *dev)
{
	struct fake *f = dev;
	pthread_t t;

	check_unlocked(f);
	f->reset++;
	/* The device quiesces before the transport drops the rings. */
	f->queue_ready_at_reset = f->vp.vq[0].ready;
	if (f->raise_during_reset && !f->locked_callbacks) {
		/* An in-flight request completing from a worker thread. */
		assert_int_equal(pthread_create(&t, NULL, completion_thread, f), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
}

static void fake_queue_reset(void *dev, unsigned int n)
{
	struct fake *f = dev;

	check_unlocked(f);
	assert_true(n < VIRTIO_MAX_QUEUES);
	f->queue_reset[n]++;
	/* The device quiesces before the transport drops the ring. */
	f->queue_ready_at_reset = f->vp.vq[n].ready;
}

static const struct virtio_dev_ops fake_ops = {
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.driver_ok = fake_driver_ok,
	.queue_ready = fake_queue_ready,
	.queue_notify = fake_queue_notify,
	.reset = fake_reset,
	.queue_reset = fake_queue_reset,
};

/* A level line: it must follow ISR exactly, even with threads racing. */
static void fake_assert(void *opaque)
{
	struct fake *f = opaque;

	__atomic_add_fetch(&f->asserts, 1, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&f->line, true, __ATOMIC_RELAXED))
		__atomic_add_fetch(&f->double_asserts, 1, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&f->vp.isr, __ATOMIC_RELAXED))
		__atomic_add_fetch(&f->late_asserts, 1, __ATOMIC_RELAXED);
}

static void fake_deassert(void *opaque)
{
	struct fake *f = opaque;

	f->deasserts++;
	__atomic_store_n(&f->line, false, __ATOMIC_RELAXED);
	if (f->vp.isr)
		f->bad_level++;
}

static int fake_attach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	struct fake *f = opaque;

	if (f->attach_fail)
		return f->attach_fail;
	assert_true(f->nr_rec < MAX_ATTACH);
	f->rec[f->nr_rec++] = (struct attach_rec) { true, port, n, efd };
	return 0;
}

static int fake_detach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	struct fake *f = opaque;

	assert_true(f->nr_rec < MAX_ATTACH);
	f->rec[f->nr_rec++] = (struct attach_rec) { false, port, n, efd };
	return 0;
}

static struct fake *fake_new(unsigned int nr_queues)
{
	static const uint16_t sizes[VIRTIO_MAX_QUEUES] = { QSIZE, 128, 256, 16 };
	struct fake *f = test_calloc(1, sizeof(*f));
	struct virtio_irq irq;
	unsigned int i;

	assert_non_null(f);
	assert_int_equal(gmem_init(&f->gm, RAM_SIZE), 0);
	for (i = 0; i < CONFIG_LEN; i++)
		f->cfg[i] = 0x10 + i;
	assert_int_equal(virtio_pci_init(&f->vp, "virtio-test", 0x1001, 0x01, 2, HOST_FEATURES,
					 CONFIG_LEN, nr_queues, sizes, &f->gm, &fake_ops, f), 0);
	irq = (struct virtio_irq) {
		.assert_line = fake_assert, .deassert_line = fake_deassert, .opaque = f,
	};
	virtio_pci_set_irq(&f->vp, &irq);
	return f;
}

static int setup(void **state)
{
	*state = fake_new(1);
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	/* Whatever the test did, no callback ran under the leaf lock. */
	assert_int_equal(f->locked_callbacks, 0);
	assert_int_equal(f->bad_level, 0);
	/* No assert without an ISR bit, none on a line already up. */
	assert_int_equal(f->late_asserts, 0);
	assert_int_equal(f->double_asserts, 0);
	virtio_pci_destroy(&f->vp);
	gmem_free(&f->gm);
	test_free(f);
	return 0;
}

static uint32_t rd(struct fake *f, uint16_t off, unsigned int size)
{
	return virtio_pci_bar_ops.read(&f->vp, off, size);
}

static void wr(struct fake *f, uint16_t off, unsigned int size, uint32_t val)
{
	virtio_pci_bar_ops.write(&f->vp, off, size, val);
}

/* setup_vq(): select, check size and PFN 0, write the PFN. */
static void setup_queue(struct fake *f, uint16_t n, uint32_t pfn)
{
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, n);
	assert_int_not_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, pfn);
}

static void test_pci_identity(void **state)
{
	struct fake *f = *state;
	const uint8_t *cfg = f->vp.pci.cfg;

	assert_int_equal(cfg[PCI_VENDOR_ID] | cfg[PCI_VENDOR_ID + 1] << 8, 0x1af4);
	assert_int_equal(cfg[PCI_DEVICE_ID] | cfg[PCI_DEVICE_ID + 1] << 8, 0x1001);
	assert_int_equal(cfg[PCI_REVISION_ID], 0);
	assert_int_equal(cfg[PCI_CLASS_PROG + 2], 0x01);
	assert_int_equal(cfg[PCI_CLASS_PROG + 1], 0x00);
	assert_int_equal(cfg[PCI_SUBSYSTEM_VENDOR_ID] | cfg[PCI_SUBSYSTEM_VENDOR_ID + 1] << 8,
			 0x1af4);
	assert_int_equal(cfg[PCI_SUBSYSTEM_ID] | cfg[PCI_SUBSYSTEM_ID + 1] << 8, 2);
	assert_int_equal(cfg[PCI_INTERRUPT_PIN], 1);
	/* 24 + 24 bytes of registers (with MSI-X's two): the next power of two. */
	assert_int_equal(f->vp.pci.bar[0].size, 64);
	assert_ptr_equal(f->vp.pci.bar[0].ops, &virtio_pci_bar_ops);
	assert_ptr_equal(f->vp.pci.bar[0].opaque, &f->vp);
	assert_ptr_equal(f->vp.pci.owner, &f->vp);
	assert_int_equal(f->vp.kick_efd[0], -1);
}

static void test_init_sizes(void **state)
{
	struct fake *f = *state;
	struct virtio_pci *vp = test_malloc(sizeof(*vp));
	uint16_t q = 128, bad = 100, big = 2048;

	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 0, 1, &q, &f->gm, &fake_ops,
					 f), 0);
	assert_int_equal(vp->pci.bar[0].size, 32);
	virtio_pci_destroy(vp);
	/* The BAR holds the config where MSI-X puts it, at 24. */
	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 256 - 24, 1, &q, &f->gm,
					 &fake_ops, f), 0);
	assert_int_equal(vp->pci.bar[0].size, 256);
	virtio_pci_destroy(vp);
	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 256 - 23, 1, &q, &f->gm,
					 &fake_ops, f), -EINVAL);
	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 8, 1, &bad, &f->gm, &fake_ops,
					 f), -EINVAL);
	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 8, 1, &big, &f->gm, &fake_ops,
					 f), -EINVAL);
	assert_int_equal(virtio_pci_init(vp, "a", 0x1001, 1, 2, 0, 8, VIRTIO_MAX_QUEUES + 1, &q,
					 &f->gm, &fake_ops, f), -EINVAL);
	test_free(vp);
}

static void test_linux_probe(void **state)
{
	struct fake *f = *state;

	/* virtio_dev_probe: reset, ACK, DRIVER, features, queues, DRIVER_OK. */
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(f->reset, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), 0);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);

	assert_int_equal(rd(f, VIRTIO_PCI_HOST_FEATURES, 4), HOST_FEATURES);
	/* A driver acking what was not offered gets only the offer. */
	wr(f, VIRTIO_PCI_GUEST_FEATURES, 4, 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_PCI_GUEST_FEATURES, 4), HOST_FEATURES);
	wr(f, VIRTIO_PCI_GUEST_FEATURES, 4, (1u << 9) | (1u << 3));
	assert_int_equal(rd(f, VIRTIO_PCI_GUEST_FEATURES, 4), 1u << 9);
	assert_true(virtio_pci_has_feature(&f->vp, 9));
	assert_false(virtio_pci_has_feature(&f->vp, 3));
	assert_false(virtio_pci_has_feature(&f->vp, 2));
	assert_false(virtio_pci_has_feature(&f->vp, 40));

	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_SEL, 2), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), QSIZE);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN);
	assert_int_equal(f->queue_ready[0], 1);
	assert_true(f->vp.vq[0].ready);
	assert_int_equal(f->vp.vq[0].num, QSIZE);
	assert_int_equal(f->vp.vq[0].desc_gpa, RING_PFN << 12);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), RING_PFN);

	/* find_vqs probes past the last queue: size 0, PFN writes go nowhere. */
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN + 4);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	assert_int_equal(f->queue_ready[1], 0);
	assert_int_equal(f->queue_ready[0], 1);
	assert_int_equal(f->vp.vq[0].desc_gpa, RING_PFN << 12);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0xffff);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN + 4);

	assert_int_equal(f->driver_ok, 0);
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->driver_ok, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1),
			 VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	/* Only the transition to DRIVER_OK counts. */
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->driver_ok, 1);
	/* Features are final once DRIVER_OK is set. */
	wr(f, VIRTIO_PCI_GUEST_FEATURES, 4, HOST_FEATURES);
	assert_int_equal(rd(f, VIRTIO_PCI_GUEST_FEATURES, 4), 1u << 9);
	assert_int_equal(f->reset, 1);
}

static void test_multi_queue(void **state)
{
	struct fake *f = fake_new(3);

	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 2);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), 256);
	setup_queue(f, 2, RING_PFN);
	setup_queue(f, 1, RING_PFN + 8);
	assert_int_equal(f->queue_ready[2], 1);
	assert_int_equal(f->queue_ready[1], 1);
	assert_int_equal(f->queue_ready[0], 0);
	assert_int_equal(f->vp.vq[1].num, 128);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 2);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), RING_PFN);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 3);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	teardown((void **)&f);
}

static void test_pfn_bad_and_busy(void **state)
{
	struct fake *f = *state;

	/* Ring beyond RAM: the queue stays unusable, the device is not told. */
	setup_queue(f, 0, RAM_SIZE >> 12);
	assert_false(f->vp.vq[0].ready);
	assert_int_equal(f->queue_ready[0], 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Notifies for it go nowhere. */
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_int_equal(f->queue_notify[0], 0);
	/* A driver status write does not clear NEEDS_RESET... */
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1),
			 VIRTIO_STATUS_ACK | VIRTIO_STATUS_NEEDS_RESET);
	/* ...a reset does. */
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), 0);

	setup_queue(f, 0, RING_PFN);
	assert_int_equal(f->queue_ready[0], 1);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_DRIVER_OK);
	/* Moving a live ring is refused; PFN 0 first, then it may move. */
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN + 8);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), RING_PFN);
	assert_int_equal(f->queue_ready[0], 1);
	/*
	 * PFN 0 of a live queue: the device finishes with that ring first
	 * (fails if the ring is just dropped under a device that may still
	 * be serving it); features and status stay, no whole reset.
	 */
	f->reset = 0;
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, 0);
	assert_int_equal(f->queue_reset[0], 1);
	assert_true(f->queue_ready_at_reset);
	assert_int_equal(f->reset, 0);
	assert_false(f->vp.vq[0].ready);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER |
			 VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	/* PFN 0 of a queue not set up changes nothing. */
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, 0);
	assert_int_equal(f->queue_reset[1], 0);
	assert_int_equal(f->reset, 0);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN + 8);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), RING_PFN + 8);
	assert_int_equal(f->queue_ready[0], 2);
}

static void test_config_access(void **state)
{
	struct fake *f = *state;
	uint32_t dword, bytes = 0;
	unsigned int i;

	/* vp_get(): byte by byte, must equal the natural-width read. */
	for (i = 0; i < 4; i++)
		bytes |= rd(f, VIRTIO_PCI_CONFIG_OFF + 8 + i, 1) << (8 * i);
	dword = rd(f, VIRTIO_PCI_CONFIG_OFF + 8, 4);
	assert_int_equal(bytes, dword);
	assert_int_equal(dword, 0x1b1a1918);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF, 2), 0x1110);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF + 23, 1), 0x10 + 23);
	/* Past config_len: nothing there. */
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF + CONFIG_LEN, 1), 0xff);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF + CONFIG_LEN, 4), 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF + 22, 4), 0xffff2726);

	/* vp_set(): byte by byte. */
	wr(f, VIRTIO_PCI_CONFIG_OFF + 12, 1, 0xab);
	assert_int_equal(f->cfg[12], 0xab);
	assert_int_equal(f->cfg_write_off, 12);
	assert_int_equal(f->cfg_write_len, 1);
	wr(f, VIRTIO_PCI_CONFIG_OFF + 4, 4, 0xdeadbeef);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF + 4, 4), 0xdeadbeef);
	assert_int_equal(f->cfg[4], 0xef);
	/* A write running off the end is clipped; one past it is dropped. */
	wr(f, VIRTIO_PCI_CONFIG_OFF + 22, 4, 0x44332211);
	assert_int_equal(f->cfg_write_len, 2);
	assert_int_equal(f->cfg[22], 0x11);
	assert_int_equal(f->cfg[23], 0x22);
	i = f->cfg_writes;
	wr(f, VIRTIO_PCI_CONFIG_OFF + CONFIG_LEN, 4, 0);
	wr(f, 60, 4, 0);
	assert_int_equal(f->cfg_writes, i);
}

static void test_isr(void **state)
{
	struct fake *f = *state;

	assert_false(virtio_pci_isr_pending(&f->vp));
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_true(f->line);
	assert_int_equal(f->asserts, 1);
	assert_true(virtio_pci_isr_pending(&f->vp));
	/* More bits before the handler read ISR: no second interrupt. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_CONFIG);
	assert_int_equal(f->asserts, 1);
	/* The interrupt handler's read acknowledges. */
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_false(f->line);
	assert_int_equal(f->deasserts, 1);
	assert_false(virtio_pci_isr_pending(&f->vp));
	/* A read with the line down already lowers nothing (no KVM_IRQ_LINE call). */
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), 0);
	assert_int_equal(f->deasserts, 1);

	/* Writes to ISR do nothing. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	wr(f, VIRTIO_PCI_ISR, 1, 0);
	assert_true(virtio_pci_isr_pending(&f->vp));
	assert_true(f->line);

	/* A read that merely covers ISR clears it too. */
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 2), VIRTIO_ISR_QUEUE << 8);
	assert_false(f->line);
	assert_false(virtio_pci_isr_pending(&f->vp));
	/* One that does not, does not. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	rd(f, VIRTIO_PCI_STATUS, 1);
	rd(f, VIRTIO_PCI_QUEUE_NOTIFY, 2);
	assert_true(virtio_pci_isr_pending(&f->vp));
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NOTIFY, 4), VIRTIO_ISR_QUEUE << 24);
	assert_false(virtio_pci_isr_pending(&f->vp));
}

static void test_needs_reset(void **state)
{
	struct fake *f = *state;

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_DRIVER_OK);
	virtio_pci_needs_reset(&f->vp);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER |
			 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->line);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
	assert_false(f->line);
	/* No queue set-up until the reset: PFN 0 or a new ring would revive it. */
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN);
	assert_false(f->vp.vq[0].ready);
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN);
	assert_true(f->vp.vq[0].ready);
}

static void test_reset(void **state)
{
	struct fake *f = *state;

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_GUEST_FEATURES, 4, HOST_FEATURES);
	setup_queue(f, 0, RING_PFN);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_DRIVER_OK);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 3);
	f->vp.vq[0].last_avail = 5;
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_true(f->line);

	/* vp_reset(): write 0, read back. */
	f->raise_during_reset = true;
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), 0);
	assert_int_equal(f->reset, 1);
	assert_true(f->queue_ready_at_reset);
	assert_int_equal(rd(f, VIRTIO_PCI_GUEST_FEATURES, 4), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_SEL, 2), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	assert_false(f->vp.vq[0].ready);
	assert_int_equal(f->vp.vq[0].last_avail, 0);
	/* Even the completion that raced the reset is gone, line down. */
	assert_false(virtio_pci_isr_pending(&f->vp));
	assert_false(f->line);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), 0);
	assert_false(virtio_pci_has_feature(&f->vp, 9));

	/* And the device can be brought up again. */
	setup_queue(f, 0, RING_PFN);
	assert_int_equal(f->queue_ready[0], 2);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->driver_ok, 2);
}

static void test_queue_notify(void **state)
{
	struct fake *f = fake_new(2);

	/* Before the queue exists, nothing. */
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_int_equal(f->queue_notify[0], 0);
	setup_queue(f, 0, RING_PFN);
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_int_equal(f->queue_notify[0], 1);
	/* Queue 1 exists but was never set up; 2 and up do not exist. */
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 1);
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 2);
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0xffff);
	assert_int_equal(f->queue_notify[0], 1);
	assert_int_equal(f->queue_notify[1], 0);
	assert_int_equal(f->queue_notify[2], 0);
	assert_int_equal(f->queue_notify[3], 0);
	teardown((void **)&f);
}

static void test_odd_accesses(void **state)
{
	struct fake *f = *state;

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK);
	/* Byte reads of a wider register see its bytes. */
	assert_int_equal(rd(f, VIRTIO_PCI_HOST_FEATURES + 3, 1), HOST_FEATURES >> 24);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 4), QSIZE);	/* + QUEUE_SEL 0 */
	/* A read straddling the registers and config. */
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 4), 0x11100000 | VIRTIO_STATUS_ACK);

	/* Writes that are not one register at its width are ignored. */
	wr(f, VIRTIO_PCI_STATUS, 2, 0);
	wr(f, VIRTIO_PCI_QUEUE_NOTIFY, 4, 0);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 1, 5);
	wr(f, VIRTIO_PCI_GUEST_FEATURES, 2, 0xffff);
	wr(f, VIRTIO_PCI_GUEST_FEATURES + 1, 1, 0xff);
	wr(f, VIRTIO_PCI_QUEUE_PFN, 2, RING_PFN);
	wr(f, VIRTIO_PCI_HOST_FEATURES, 4, 0);
	wr(f, VIRTIO_PCI_QUEUE_NUM, 2, 8);
	wr(f, VIRTIO_PCI_STATUS, 3, 0);
	assert_int_equal(f->reset, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_STATUS, 1), VIRTIO_STATUS_ACK);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_SEL, 2), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_GUEST_FEATURES, 4), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_HOST_FEATURES, 4), HOST_FEATURES);
	assert_int_equal(rd(f, VIRTIO_PCI_QUEUE_NUM, 2), QSIZE);
	assert_false(f->vp.vq[0].ready);
	/* Sizes the bus never produces read as all ones. */
	assert_int_equal(rd(f, 0, 3), 0xffffffff);
	assert_int_equal(rd(f, 0, 0), 0xffffffff);
	/* The last byte of the BAR. */
	assert_int_equal(rd(f, 63, 1), 0xff);
}

struct storm {
	struct fake *f;
	unsigned int n;
	pthread_barrier_t go;
};

static void *raiser(void *arg)
{
	struct storm *s = arg;
	unsigned int i;

	pthread_barrier_wait(&s->go);
	for (i = 0; i < s->n; i++) {
		virtio_pci_raise_isr(&s->f->vp, VIRTIO_ISR_QUEUE);
		if (i % 16 == 0)
			sched_yield();
	}
	return NULL;
}

static void test_isr_race(void **state)
{
	struct fake *f = *state;
	struct storm s = { .f = f, .n = 20000 };
	pthread_t t;
	unsigned int i;

	/* Completions and ISR reads racing: the line must track ISR. */
	pthread_barrier_init(&s.go, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, raiser, &s), 0);
	pthread_barrier_wait(&s.go);
	for (i = 0; i < 20000; i++) {
		rd(f, VIRTIO_PCI_ISR, 1);
		if (i % 16 == 0)
			sched_yield();
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&s.go);
	/* Never an ISR bit with the line down (a lost interrupt)... */
	if (virtio_pci_isr_pending(&f->vp))
		assert_true(f->line);
	rd(f, VIRTIO_PCI_ISR, 1);
	assert_false(f->line);
	assert_int_equal(f->bad_level, 0);
	/* ...and no spurious one: teardown checks late and double asserts. */
	fprintf(stderr, "isr race: %u asserts for 20000 raises\n", f->asserts);
}

static void assert_rec(const struct attach_rec *r, bool attach, uint16_t port, unsigned int n,
		       int efd)
{
	assert_int_equal(r->attach, attach);
	assert_int_equal(r->port, port);
	assert_int_equal(r->n, n);
	assert_int_equal(r->efd, efd);
}

static const struct virtio_notify fake_notify_tmpl = {
	.attach = fake_attach, .detach = fake_detach,
};

/* The transport on a real bus: BAR0 placed, moved and switched off by the guest. */
static void test_notify_bar_moves(void **state)
{
	struct fake *f = fake_new(2);
	struct virtio_notify nt = fake_notify_tmpl;
	struct io_bus pio;
	struct pci_bus bus;
	uint32_t v = 0;
	uint16_t base;
	unsigned int i;

	nt.opaque = f;
	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	assert_int_equal(pci_bus_add(&bus, &f->vp.pci, 3), 0);
	assert_true(f->vp.pci.bar[0].mapped);
	base = f->vp.pci.bar[0].mapped_base;
	assert_int_not_equal(base, 0);

	assert_int_equal(virtio_pci_set_notify(&f->vp, &nt), 0);
	for (i = 0; i < 2; i++) {
		int fl = fcntl(f->vp.kick_efd[i], F_GETFL);

		assert_true(f->vp.kick_efd[i] >= 0);
		assert_true(fl & O_NONBLOCK);
		assert_true(fcntl(f->vp.kick_efd[i], F_GETFD) & FD_CLOEXEC);
	}
	assert_int_not_equal(f->vp.kick_efd[0], f->vp.kick_efd[1]);
	assert_int_equal(f->nr_rec, 2);
	assert_rec(&f->rec[0], true, base + VIRTIO_PCI_QUEUE_NOTIFY, 0, f->vp.kick_efd[0]);
	assert_rec(&f->rec[1], true, base + VIRTIO_PCI_QUEUE_NOTIFY, 1, f->vp.kick_efd[1]);
	assert_int_equal(virtio_pci_set_notify(&f->vp, &nt), -EBUSY);

	/* The registers answer at the BAR through the port bus. */
	assert_true(io_bus_access(&pio, base + VIRTIO_PCI_HOST_FEATURES, false, &v, 4));
	assert_int_equal(v, HOST_FEATURES);

	/* The guest moves BAR0: the ioeventfds follow. */
	f->nr_rec = 0;
	pci_cfg_write(&bus, 3, PCI_BASE_ADDRESS_0, 4, 0xd000 | PCI_BASE_ADDRESS_SPACE_IO);
	assert_int_equal(f->vp.pci.bar[0].mapped_base, 0xd000);
	assert_int_equal(f->nr_rec, 4);
	assert_rec(&f->rec[0], false, base + VIRTIO_PCI_QUEUE_NOTIFY, 0, f->vp.kick_efd[0]);
	assert_rec(&f->rec[1], true, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 0, f->vp.kick_efd[0]);
	assert_rec(&f->rec[2], false, base + VIRTIO_PCI_QUEUE_NOTIFY, 1, f->vp.kick_efd[1]);
	assert_rec(&f->rec[3], true, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 1, f->vp.kick_efd[1]);
	v = 0;
	assert_true(io_bus_access(&pio, 0xd000 + VIRTIO_PCI_HOST_FEATURES, false, &v, 4));
	assert_int_equal(v, HOST_FEATURES);

	/* I/O decode off: detached only. */
	f->nr_rec = 0;
	pci_cfg_write(&bus, 3, PCI_COMMAND, 2, 0);
	assert_false(f->vp.pci.bar[0].mapped);
	assert_int_equal(f->nr_rec, 2);
	assert_rec(&f->rec[0], false, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 0, f->vp.kick_efd[0]);
	assert_rec(&f->rec[1], false, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 1, f->vp.kick_efd[1]);

	/* Back on: attached only. */
	f->nr_rec = 0;
	pci_cfg_write(&bus, 3, PCI_COMMAND, 2, PCI_COMMAND_IO);
	assert_int_equal(f->nr_rec, 2);
	assert_rec(&f->rec[0], true, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 0, f->vp.kick_efd[0]);
	assert_rec(&f->rec[1], true, 0xd000 + VIRTIO_PCI_QUEUE_NOTIFY, 1, f->vp.kick_efd[1]);

	/* An attach the VMM refuses is survivable: register writes still notify. */
	f->nr_rec = 0;
	f->attach_fail = -ENOSPC;
	pci_cfg_write(&bus, 3, PCI_BASE_ADDRESS_0, 4, 0xe000 | PCI_BASE_ADDRESS_SPACE_IO);
	assert_int_equal(f->nr_rec, 2);		/* the two detaches */
	setup_queue(f, 1, RING_PFN);
	v = 1;
	assert_true(io_bus_access(&pio, 0xe000 + VIRTIO_PCI_QUEUE_NOTIFY, true, &v, 2));
	assert_int_equal(f->queue_notify[1], 1);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
	teardown((void **)&f);
}

/* set_notify before the device is on the bus: attached when it is mapped. */
static void test_notify_before_map(void **state)
{
	struct fake *f = fake_new(1);
	struct virtio_notify nt = fake_notify_tmpl;
	struct io_bus pio;
	struct pci_bus bus;

	nt.opaque = f;
	assert_int_equal(virtio_pci_set_notify(&f->vp, &nt), 0);
	assert_int_equal(f->nr_rec, 0);
	assert_true(f->vp.kick_efd[0] >= 0);
	assert_int_equal(f->vp.kick_efd[1], -1);

	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	assert_int_equal(pci_bus_add(&bus, &f->vp.pci, 1), 0);
	assert_int_equal(f->nr_rec, 1);
	assert_rec(&f->rec[0], true, f->vp.pci.bar[0].mapped_base + VIRTIO_PCI_QUEUE_NOTIFY, 0,
		   f->vp.kick_efd[0]);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
	teardown((void **)&f);
}

static void test_notify_attach_fails(void **state)
{
	struct fake *f = fake_new(1);
	struct virtio_notify nt = fake_notify_tmpl;
	struct io_bus pio;
	struct pci_bus bus;

	nt.opaque = f;
	io_bus_init(&pio);
	assert_int_equal(pci_bus_init(&bus, &pio, NULL), 0);
	assert_int_equal(pci_bus_add(&bus, &f->vp.pci, 1), 0);
	f->attach_fail = -EEXIST;
	assert_int_equal(virtio_pci_set_notify(&f->vp, &nt), -EEXIST);
	/* Not half set up: a later BAR move calls nobody. */
	assert_null(f->vp.pci.bar_moved);
	f->attach_fail = 0;
	assert_int_equal(virtio_pci_set_notify(&f->vp, &nt), 0);
	assert_int_equal(f->nr_rec, 1);

	pci_bus_destroy(&bus);
	io_bus_destroy(&pio);
	teardown((void **)&f);
}


/*
 * A resampling sink (KVM irqfd + resample fd) with the guest and KVM
 * modelled by one thread: asserts land some time after they are made
 * (irqfd injection is asynchronous), a delivered interrupt runs a handler
 * that reads ISR, and the EOI that lowers the line is reported the way
 * the host does it: after the handler (VT-x/AMD-V), or already when the
 * interrupt is delivered (PVM).  Completions race all of it.  Every
 * interrupt must find a bit in ISR, and no bit may be left without one.
 */
struct rs_model {
	struct fake *f;
	bool early_eoi;			/* PVM: EOI reported at delivery */
	unsigned int raises;
	bool raiser_done;
	unsigned int injects;		/* asserted, not landed yet */
	unsigned int eoi_pending;	/* EOIs not yet reported to the transport */
	unsigned int asserts, isr0_asserts, delivered, spurious;
	bool stop_main;
};


static void rs_assert(void *opaque)
{
	struct rs_model *m = opaque;

	__atomic_add_fetch(&m->asserts, 1, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&m->f->vp.isr, __ATOMIC_RELAXED))
		__atomic_add_fetch(&m->isr0_asserts, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->injects, 1, __ATOMIC_RELEASE);
}

static bool rs_eoi_seen(void *opaque)
{
	struct rs_model *m = opaque;
	unsigned int n = __atomic_load_n(&m->eoi_pending, __ATOMIC_ACQUIRE);

	/* Like read() on the resample eventfd: takes the whole count. */
	return n && __atomic_compare_exchange_n(&m->eoi_pending, &n, 0, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED);
}

static unsigned int rs_rand(unsigned int *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

static void rs_pause(unsigned int *seed)
{
	unsigned int i, n = rs_rand(seed) % 64;

	for (i = 0; i < n; i++)
		__asm__ __volatile__("" ::: "memory");
	if (rs_rand(seed) % 8 == 0)
		sched_yield();
}

static void *rs_raiser(void *arg)
{
	struct rs_model *m = arg;
	unsigned int i, seed = 7;

	for (i = 0; i < m->raises; i++) {
		virtio_pci_raise_isr(&m->f->vp, VIRTIO_ISR_QUEUE);
		rs_pause(&seed);
	}
	__atomic_store_n(&m->raiser_done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* The VMM's main loop: reads the resample fd, reports the EOI. */
static void *rs_main_loop(void *arg)
{
	struct rs_model *m = arg;

	while (!__atomic_load_n(&m->stop_main, __ATOMIC_ACQUIRE)) {
		if (rs_eoi_seen(m))
			virtio_pci_irq_eoi(&m->f->vp);
		sched_yield();
	}
	return NULL;
}

static void rs_eoi(struct rs_model *m)
{
	__atomic_add_fetch(&m->eoi_pending, 1, __ATOMIC_RELEASE);
}

/* KVM and the guest.  Returns when everything raised was taken. */
static void rs_guest(struct rs_model *m)
{
	unsigned int seed = 11, quiet = 0;
	bool line = false;

	while (quiet < 20000) {
		/* Injections land; one landing on a line that is up merges. */
		if (__atomic_load_n(&m->injects, __ATOMIC_ACQUIRE)) {
			__atomic_sub_fetch(&m->injects, 1, __ATOMIC_RELAXED);
			line = true;
		}
		if (!line) {
			quiet = __atomic_load_n(&m->raiser_done, __ATOMIC_ACQUIRE) ? quiet + 1 : 0;
			sched_yield();
			continue;
		}
		quiet = 0;
		m->delivered++;
		if (m->early_eoi) {
			line = false;
			rs_eoi(m);
		}
		rs_pause(&seed);
		if (!rd(m->f, VIRTIO_PCI_ISR, 1))
			m->spurious++;
		rs_pause(&seed);
		/* Injections during the handler: they merge into this one. */
		while (!m->early_eoi && __atomic_load_n(&m->injects, __ATOMIC_ACQUIRE)) {
			__atomic_sub_fetch(&m->injects, 1, __ATOMIC_RELAXED);
			rs_pause(&seed);
		}
		if (!m->early_eoi) {
			line = false;
			rs_eoi(m);
		}
	}
}

static void rs_run(bool early_eoi)
{
	struct rs_model m = { .early_eoi = early_eoi, .raises = 20000 };
	/* As vmm/virtio_kvm.c: early EOIs are the main loop's alone. */
	struct virtio_irq irq = {
		.assert_line = rs_assert, .eoi_seen = early_eoi ? NULL : rs_eoi_seen,
		.resample = true, .early_eoi = early_eoi, .opaque = &m,
	};
	pthread_t raiser, main_loop;

	m.f = fake_new(1);
	virtio_pci_set_irq(&m.f->vp, &irq);
	assert_int_equal(pthread_create(&main_loop, NULL, rs_main_loop, &m), 0);
	assert_int_equal(pthread_create(&raiser, NULL, rs_raiser, &m), 0);
	rs_guest(&m);
	assert_int_equal(pthread_join(raiser, NULL), 0);
	__atomic_store_n(&m.stop_main, true, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(main_loop, NULL), 0);
	fprintf(stderr, "%s EOI: %u raises, %u asserts, %u interrupts delivered\n",
		early_eoi ? "early (PVM)" : "late (VT-x/AMD-V)", m.raises, m.asserts, m.delivered);
	/* Every interrupt found its bit, and none was left in ISR. */
	assert_int_equal(m.spurious, 0);
	assert_int_equal(m.isr0_asserts, 0);
	assert_false(virtio_pci_isr_pending(&m.f->vp));
	assert_true(m.delivered > 0);
	teardown((void **)&m.f);
}

static void test_irq_resample_late_eoi(void **state)
{
	rs_run(false);
}

static void test_irq_resample_early_eoi(void **state)
{
	rs_run(true);
}

/* Step by step, an EOI after the handler (VT-x/AMD-V). */
static void test_irq_resample_steps_late(void **state)
{
	struct rs_model m = { .f = *state };
	struct virtio_irq irq = { .assert_line = rs_assert, .resample = true, .opaque = &m };
	struct fake *f = m.f;

	virtio_pci_set_irq(&f->vp, &irq);
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_int_equal(m.asserts, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_false(virtio_pci_irq_eoi(&f->vp));
	/* An EOI with the bits unread (the pin was masked): the line is still up. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_int_equal(m.asserts, 2);
	assert_true(virtio_pci_irq_eoi(&f->vp));
	assert_int_equal(m.asserts, 3);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	/* An edge after the handler's read but before its EOI waits for it... */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_int_equal(m.asserts, 3);
	/* ...which asserts for it; the EOI of that one, after the read, asserts nothing. */
	assert_true(virtio_pci_irq_eoi(&f->vp));
	assert_int_equal(m.asserts, 4);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_false(virtio_pci_irq_eoi(&f->vp));
	/* Reading ISR lowers nothing here: the line waits for the EOI. */
	assert_int_equal(f->deasserts, 0);
	assert_int_equal(m.isr0_asserts, 0);
	assert_false(virtio_pci_irq_owed(&f->vp));
}

/* Step by step, an EOI reported at delivery (PVM). */
static void test_irq_resample_steps_early(void **state)
{
	struct rs_model m = { .f = *state };
	struct virtio_irq irq = {
		.assert_line = rs_assert, .resample = true, .early_eoi = true, .opaque = &m,
	};
	struct fake *f = m.f;

	virtio_pci_set_irq(&f->vp, &irq);
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_int_equal(m.asserts, 1);
	/* The EOI comes with the delivery, before the handler reads: nothing. */
	assert_false(virtio_pci_irq_eoi(&f->vp));
	assert_true(virtio_pci_irq_owed(&f->vp));
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_false(virtio_pci_irq_owed(&f->vp));
	assert_false(virtio_pci_irq_recheck(&f->vp));
	/* The line is down already: a new edge asserts at once. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_QUEUE);
	assert_int_equal(m.asserts, 2);
	assert_false(virtio_pci_irq_eoi(&f->vp));
	/* A handler that never read ISR (lazily disabled): announced again. */
	virtio_pci_raise_isr(&f->vp, VIRTIO_ISR_CONFIG);
	assert_int_equal(m.asserts, 2);
	assert_true(virtio_pci_irq_recheck(&f->vp));
	assert_int_equal(m.asserts, 3);
	assert_false(virtio_pci_irq_eoi(&f->vp));
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_false(virtio_pci_irq_recheck(&f->vp));
	assert_int_equal(m.asserts, 3);
	assert_int_equal(m.isr0_asserts, 0);
}

/* NEEDS_RESET and its config bit are seen together, or not at all. */
static void *nr_setter(void *arg)
{
	virtio_pci_needs_reset(arg);
	return NULL;
}

static void test_needs_reset_atomic(void **state)
{
	struct fake *f = *state;
	unsigned int i, seen = 0;
	pthread_t t;

	for (i = 0; i < 2000; i++) {
		wr(f, VIRTIO_PCI_STATUS, 1, 0);
		assert_int_equal(pthread_create(&t, NULL, nr_setter, &f->vp), 0);
		while (!(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET))
			sched_yield();
		/* The handler polls STATUS first; ISR must already hold the bit. */
		assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
		assert_int_equal(pthread_join(t, NULL), 0);
		seen++;
	}
	assert_int_equal(seen, 2000);
}

/* ---- MSI-X ---------------------------------------------------------------- */

#define NR_VECTORS	3
#define SLOT		3

struct msix_rec {
	unsigned int fires[NR_VECTORS];
	unsigned int nr_fires;
	unsigned int routes;
};

static void rec_fire(void *opaque, unsigned int v)
{
	struct msix_rec *r = opaque;

	assert_true(v < NR_VECTORS);
	r->fires[v]++;
	r->nr_fires++;
}

static int rec_route(void *opaque, unsigned int v, uint64_t addr, uint32_t data)
{
	struct msix_rec *r = opaque;

	(void)v;
	(void)addr;
	(void)data;
	r->routes++;
	return 0;
}

struct msix_fix {
	struct fake *f;
	struct msix_rec rec;
	struct io_bus pio, mmio;
	struct pci_bus bus;
	unsigned int cap;
	uint32_t table;		/* BAR 1's guest address */
};

static struct msix_fix *msix_fix_new(unsigned int nr_queues)
{
	struct msix_fix *m = test_calloc(1, sizeof(*m));
	struct msix_sink sink = { .fire = rec_fire, .route = rec_route, .opaque = &m->rec };

	assert_non_null(m);
	m->f = fake_new(nr_queues);
	assert_int_equal(virtio_pci_init_msix(&m->f->vp, NR_VECTORS), 0);
	assert_int_equal(virtio_pci_init_msix(&m->f->vp, NR_VECTORS), -EBUSY);
	virtio_pci_set_msix_sink(&m->f->vp, &sink);
	io_bus_init(&m->pio);
	io_bus_init(&m->mmio);
	assert_int_equal(pci_bus_init(&m->bus, &m->pio, &m->mmio), 0);
	assert_int_equal(pci_bus_add(&m->bus, &m->f->vp.pci, SLOT), 0);
	m->cap = m->f->vp.msix_cap;
	m->table = pci_cfg_read(&m->bus, SLOT, PCI_BASE_ADDRESS_0 + 4, 4) & ~0xfu;
	return m;
}

static void msix_fix_free(struct msix_fix *m)
{
	pci_bus_destroy(&m->bus);
	io_bus_destroy(&m->pio);
	io_bus_destroy(&m->mmio);
	teardown((void **)&m->f);
	test_free(m);
}

static void msix_control(struct msix_fix *m, uint16_t val)
{
	pci_cfg_write(&m->bus, SLOT, m->cap + MSIX_CAP_CONTROL, 2, val);
}

/* Through the MMIO bus, as the guest's writel. */
static void table_write(struct msix_fix *m, unsigned int v, unsigned int field, uint32_t val)
{
	assert_true(io_bus_access(&m->mmio, m->table + v * MSIX_ENTRY_SIZE + field, true, &val, 4));
}

static void program_vector(struct msix_fix *m, unsigned int v)
{
	table_write(m, v, 0, 0xfee00000);
	table_write(m, v, 4, 0);
	table_write(m, v, 8, 0x40 + v);
	table_write(m, v, 12, 0);
}

/* The capability as Linux's pci_find_capability and msix_capability_init see it. */
static void test_msix_capability(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	unsigned int pos, n = 0;
	uint32_t v;

	(void)state;
	assert_true(pci_cfg_read(&m->bus, SLOT, PCI_STATUS, 2) & 0x10);
	for (pos = pci_cfg_read(&m->bus, SLOT, PCI_CAPABILITY_LIST, 1); pos && n < 48;
	     pos = pci_cfg_read(&m->bus, SLOT, pos + 1, 1), n++)
		if (pci_cfg_read(&m->bus, SLOT, pos, 1) == PCI_CAP_ID_MSIX)
			break;
	assert_int_equal(pos, m->cap);
	assert_int_equal(pci_cfg_read(&m->bus, SLOT, pos + 2, 2), NR_VECTORS - 1);
	assert_int_equal(pci_cfg_read(&m->bus, SLOT, pos + 4, 4), VIRTIO_PCI_MSIX_BAR);
	assert_int_equal(pci_cfg_read(&m->bus, SLOT, pos + 8, 4),
			 MSIX_PBA_OFF | VIRTIO_PCI_MSIX_BAR);
	/* A 32-bit memory BAR of 4 KiB, mapped, the table readable through it. */
	assert_int_equal(pci_cfg_read(&m->bus, SLOT, PCI_BASE_ADDRESS_0 + 4, 4) & 0xf, 0);
	assert_int_not_equal(m->table, 0);
	assert_int_equal(m->table % MSIX_BAR_SIZE, 0);
	v = 0;
	assert_true(io_bus_access(&m->mmio, m->table + 12, false, &v, 4));
	assert_int_equal(v, MSIX_ENTRY_CTRL_MASK);
	/* Only enable and the function mask are writable in the control word. */
	msix_control(m, 0xffff);
	assert_int_equal(pci_cfg_read(&m->bus, SLOT, pos + 2, 2),
			 MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL | (NR_VECTORS - 1));
	msix_fix_free(m);
}

/* Enabling MSI-X moves the device config from 20 to 24, and back. */
static void test_msix_layout(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct fake *f = m->f;

	(void)state;
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF, 1), 0x10);
	msix_control(m, MSIX_CONTROL_ENABLE);
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF_MSIX, 4), 0x13121110);
	/* One read across the vector register and the config. */
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 4), 0x1110ffff);
	wr(f, VIRTIO_PCI_CONFIG_OFF_MSIX + 2, 1, 0xab);
	assert_int_equal(f->cfg_write_off, 2);
	assert_int_equal(f->cfg[2], 0xab);
	/* The last config byte sits at 24 + len - 1; nothing past it. */
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF_MSIX + CONFIG_LEN - 1, 1),
			 f->cfg[CONFIG_LEN - 1]);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF_MSIX + CONFIG_LEN, 1), 0xff);
	msix_control(m, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_CONFIG_OFF, 1), 0x10);
	/* With MSI-X off a write at 20 is config, not a vector. */
	wr(f, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	assert_int_equal(f->cfg_write_off, 0);
	msix_control(m, MSIX_CONTROL_ENABLE);
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	msix_fix_free(m);
}

/* vp_legacy_config_vector / vp_legacy_queue_vector: write, read back. */
static void test_msix_vector_registers(void **state)
{
	struct msix_fix *m = msix_fix_new(2);
	struct fake *f = m->f;

	(void)state;
	msix_control(m, MSIX_CONTROL_ENABLE);
	wr(f, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), 0);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 2);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), 2);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), 1);
	/* A vector the table lacks maps to nothing, and says so. */
	wr(f, VIRTIO_MSI_CONFIG_VECTOR, 2, NR_VECTORS);
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 0x7fff);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue past the device's: nothing stored, NO_VECTOR read. */
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 3);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 0);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0xffff);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	/* Odd widths change nothing. */
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 1, 0);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 4, 0);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), 2);
	/* A reset forgets the mapping (the table is PCI's and stays). */
	table_write(m, 1, 8, 0x55);
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(rd(f, VIRTIO_MSI_QUEUE_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(m->f->vp.msix.table[1].data, 0x55);
	msix_fix_free(m);
}

/* Queue interrupts: the queue's vector with MSI-X on, INTx with it off. */
static void test_msix_queue_interrupt(void **state)
{
	struct msix_fix *m = msix_fix_new(2);
	struct fake *f = m->f;

	(void)state;
	msix_control(m, MSIX_CONTROL_ENABLE);
	program_vector(m, 1);
	program_vector(m, 2);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	wr(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 2);
	virtio_pci_notify_queue(&f->vp, 0);
	virtio_pci_notify_queue(&f->vp, 1);
	virtio_pci_notify_queue(&f->vp, 1);
	assert_int_equal(m->rec.fires[1], 1);
	assert_int_equal(m->rec.fires[2], 2);
	/* Neither ISR nor the line is touched: the guest reads nothing in BAR0. */
	assert_int_equal(f->vp.isr, 0);
	assert_int_equal(f->asserts, 0);
	/* A queue without a vector, and one the device lacks: nothing at all. */
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
	virtio_pci_notify_queue(&f->vp, 1);
	virtio_pci_notify_queue(&f->vp, 2);
	virtio_pci_notify_queue(&f->vp, UINT32_MAX);
	assert_int_equal(m->rec.nr_fires, 3);
	assert_int_equal(f->asserts, 0);
	/* MSI-X off (pci=nomsi, or the driver gave it up): INTx again. */
	msix_control(m, 0);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_int_equal(f->asserts, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_int_equal(m->rec.nr_fires, 3);
	msix_fix_free(m);
}

/* Masked vectors hold their message in the PBA until unmasked. */
static void test_msix_mask_pending(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct fake *f = m->f;
	uint32_t pba = 0;

	(void)state;
	msix_control(m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	program_vector(m, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_int_equal(m->rec.nr_fires, 0);
	assert_true(io_bus_access(&m->mmio, m->table + MSIX_PBA_OFF, false, &pba, 4));
	assert_int_equal(pba, 1u << 1);
	/* The function mask lifted: delivered once, bit cleared. */
	msix_control(m, MSIX_CONTROL_ENABLE);
	assert_int_equal(m->rec.fires[1], 1);
	assert_true(io_bus_access(&m->mmio, m->table + MSIX_PBA_OFF, false, &pba, 4));
	assert_int_equal(pba, 0);
	/* The entry's mask: the same. */
	table_write(m, 1, 12, MSIX_ENTRY_CTRL_MASK);
	virtio_pci_notify_queue(&f->vp, 0);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_int_equal(m->rec.fires[1], 1);
	table_write(m, 1, 12, 0);
	assert_int_equal(m->rec.fires[1], 2);
	assert_int_equal(f->asserts, 0);
	msix_fix_free(m);
}

/* A reset forgets messages held for the old driver. */
static void test_msix_reset_clears_pending(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct fake *f = m->f;

	(void)state;
	msix_control(m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	program_vector(m, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_true(msix_pending(&f->vp.msix, 1));
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_false(msix_pending(&f->vp.msix, 1));
	msix_control(m, MSIX_CONTROL_ENABLE);
	assert_int_equal(m->rec.nr_fires, 0);
	msix_fix_free(m);
}

/* Switching between INTx and MSI-X hands over what is outstanding. */
static void test_msix_switch_handover(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct fake *f = m->f;

	(void)state;
	/*
	 * INTx raised before MSI-X came on: announced then, it stays for the
	 * driver's INTx handler (not lost at the switch).
	 */
	virtio_pci_notify_queue(&f->vp, 0);
	assert_true(f->line);
	msix_control(m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_false(f->line);
	/* A message held by the function mask, then MSI-X off: INTx announces it. */
	program_vector(m, 1);
	wr(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_int_equal(m->rec.nr_fires, 0);
	msix_control(m, 0);
	assert_int_equal(f->asserts, 2);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	/* Nothing held: switching off raises nothing. */
	msix_control(m, MSIX_CONTROL_ENABLE);
	msix_control(m, 0);
	assert_int_equal(f->asserts, 2);
	msix_fix_free(m);
}

struct notify_loop {
	struct virtio_pci *vp;
	unsigned int n;
};

static void *notify_loop(void *arg)
{
	struct notify_loop *l = arg;
	unsigned int i;

	for (i = 0; i < l->n; i++)
		virtio_pci_notify_queue(l->vp, 0);
	return NULL;
}

/*
 * Completions (INTx under the table's lock, MSI-X off) racing resets
 * (which drop the table's pending bits): one lock order, no deadlock.
 * alarm() turns a hang into a failure.
 */
static void test_msix_reset_vs_notify(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct notify_loop l = { &m->f->vp, 20000 };
	unsigned int i;
	pthread_t t;

	(void)state;
	alarm(60);
	assert_int_equal(pthread_create(&t, NULL, notify_loop, &l), 0);
	for (i = 0; i < 20000; i++) {
		wr(m->f, VIRTIO_PCI_STATUS, 1, 0);
		(void)rd(m->f, VIRTIO_PCI_ISR, 1);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	alarm(0);
	(void)rd(m->f, VIRTIO_PCI_ISR, 1);
	/* The reset callback's trylock met the other thread's hold, not its own. */
	m->f->locked_callbacks = 0;
	msix_fix_free(m);
}

/* NEEDS_RESET reaches the driver on the config vector with MSI-X on. */
static void test_msix_config_interrupt(void **state)
{
	struct msix_fix *m = msix_fix_new(1);
	struct fake *f = m->f;

	(void)state;
	msix_control(m, MSIX_CONTROL_ENABLE);
	program_vector(m, 0);
	wr(f, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	virtio_pci_needs_reset(&f->vp);
	assert_int_equal(m->rec.fires[0], 1);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->asserts, 0);
	/* No config vector: the status still says it, no message. */
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	msix_control(m, MSIX_CONTROL_ENABLE);
	virtio_pci_needs_reset(&f->vp);
	assert_int_equal(m->rec.nr_fires, 1);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* MSI-X off: the ISR config bit and INTx, as before. */
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	msix_control(m, 0);
	virtio_pci_needs_reset(&f->vp);
	assert_int_equal(f->asserts, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
	msix_fix_free(m);
}

/* A function without MSI-X: no capability, no BAR 1, INTx only. */
static void test_msix_absent(void **state)
{
	struct fake *f = *state;

	assert_false(f->vp.has_msix);
	assert_int_equal(f->vp.pci.bar[1].size, 0);
	assert_int_equal(f->vp.pci.cfg[PCI_CAPABILITY_LIST], 0);
	virtio_pci_notify_queue(&f->vp, 0);
	assert_int_equal(f->asserts, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	/* Offsets 20-23 are config: the vector registers do not exist. */
	assert_int_equal(rd(f, VIRTIO_MSI_CONFIG_VECTOR, 2), 0x1110);
	assert_int_equal(virtio_pci_init_msix(&f->vp, 0), -EINVAL);
	assert_false(f->vp.has_msix);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pci_identity),
		T(test_init_sizes),
		T(test_linux_probe),
		cmocka_unit_test(test_multi_queue),
		T(test_pfn_bad_and_busy),
		T(test_config_access),
		T(test_isr),
		T(test_needs_reset),
		T(test_reset),
		cmocka_unit_test(test_queue_notify),
		T(test_odd_accesses),
		T(test_isr_race),
		T(test_irq_resample_steps_late),
		T(test_irq_resample_steps_early),
		T(test_needs_reset_atomic),
		cmocka_unit_test(test_irq_resample_late_eoi),
		cmocka_unit_test(test_irq_resample_early_eoi),
		cmocka_unit_test(test_notify_bar_moves),
		cmocka_unit_test(test_notify_before_map),
		cmocka_unit_test(test_notify_attach_fails),
		cmocka_unit_test(test_msix_capability),
		cmocka_unit_test(test_msix_layout),
		cmocka_unit_test(test_msix_vector_registers),
		cmocka_unit_test(test_msix_queue_interrupt),
		cmocka_unit_test(test_msix_mask_pending),
		cmocka_unit_test(test_msix_config_interrupt),
		cmocka_unit_test(test_msix_reset_clears_pending),
		cmocka_unit_test(test_msix_switch_handover),
		cmocka_unit_test(test_msix_reset_vs_notify),
		T(test_msix_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
