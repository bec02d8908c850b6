// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "lib/guest_mem.h"
#include "lib/util.h"
#include "pci/pci.h"

#define CONFIG_ADDRESS_ENABLE	0x80000000u
#define CONFIG_PORTS		8

/* Everything at or above this is a header register no device here has. */
#define PCI_BAR_END		(PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS)

/*
 * Memory BARs must not land on guest RAM or on the IOAPIC (0xfec00000,
 * vmm/layout.h's IOAPIC_ADDR, which this layer cannot include; vmm/vm.c
 * checks the window against it too).
 */
_Static_assert(PCI_MMIO_BASE >= GMEM_32BIT_GAP_START && PCI_MMIO_BASE < PCI_MMIO_END &&
	       PCI_MMIO_END <= 0xfec00000u, "PCI memory window outside the RAM gap");

static uint32_t all_ones(unsigned int size)
{
	return size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

static uint32_t cfg_get(const uint8_t *p, unsigned int size)
{
	uint32_t val = 0;
	unsigned int i;

	for (i = 0; i < size; i++)
		val |= (uint32_t)p[i] << (i * 8);
	return val;
}

static void cfg_put(uint8_t *p, unsigned int size, uint32_t val)
{
	unsigned int i;

	for (i = 0; i < size; i++)
		p[i] = val >> (i * 8);
}

static bool cfg_range_ok(unsigned int off, unsigned int size)
{
	return (size == 1 || size == 2 || size == 4) && off < PCI_CFG_SIZE &&
	       off + size <= PCI_CFG_SIZE;
}

/* Called with bus->lock held. */
static struct pci_dev *pci_bus_slot(struct pci_bus *bus, unsigned int slot)
{
	return slot < PCI_MAX_DEVICES ? bus->dev[slot] : NULL;
}

/*
 * Merge val into the writable bits only.  Returns true when the write
 * touched a register that decides where the BARs are decoded, so that the
 * caller re-syncs the io_bus once the lock is dropped.
 */
static bool pci_dev_cfg_write(struct pci_dev *d, unsigned int off, unsigned int size,
			      uint32_t val)
{
	unsigned int i;

	for (i = 0; i < size; i++) {
		uint8_t m = d->wmask[off + i];

		d->cfg[off + i] = (d->cfg[off + i] & ~m) | ((val >> (i * 8)) & m);
	}
	return (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) ||
	       (off < PCI_BAR_END && off + size > PCI_BASE_ADDRESS_0);
}

/*
 * Where BAR n should be decoded right now, 0 for nowhere.  Called with
 * bus->lock held.
 */
static uint32_t pci_bar_target(const struct pci_dev *d, int n)
{
	uint32_t size = d->bar[n].size;
	uint16_t cmd = cfg_get(&d->cfg[PCI_COMMAND], 2);
	uint32_t reg = cfg_get(&d->cfg[PCI_BASE_ADDRESS_0 + 4 * n], 4);
	uint32_t base;

	if (!size)
		return 0;
	/*
	 * wmask keeps a memory BAR aligned to its size, so it cannot run
	 * past 4 GiB; where in the 4 GiB is the guest's business.
	 */
	if (d->bar[n].is_mem)
		return cmd & PCI_COMMAND_MEMORY ? reg & PCI_BASE_ADDRESS_MEM_MASK : 0;
	if (!(cmd & PCI_COMMAND_IO))
		return 0;
	base = reg & PCI_BASE_ADDRESS_IO_MASK;
	if (base == 0 || (uint64_t)base + size > PCI_IO_END)
		return 0;
	return base;
}

static struct io_bus *pci_bar_bus(const struct pci_bus *bus, const struct pci_bar *bar)
{
	return bar->is_mem ? bus->mmio : bus->pio;
}

/*
 * Bring the io_buses (ports and MMIO) in line with d's BAR and command
 * registers.  The targets are read under bus->lock; io_bus_register and
 * bar_moved run without it (bar_moved may do ioctls, and the io_bus takes
 * its own lock).  map_lock keeps two vCPUs from applying moves out of
 * order: since each pass re-reads the registers, whichever runs last
 * installs the latest state, never a stale one.
 *
 * With report false a failure is left to the caller to print.  Returns
 * 0, or the first io_bus error.
 */
static int pci_dev_sync_bars(struct pci_dev *d, bool report)
{
	struct pci_bus *bus = d->bus;
	uint32_t target[PCI_NUM_BARS];
	int n, err = 0;

	pthread_mutex_lock(&bus->map_lock);

	pthread_mutex_lock(&bus->lock);
	for (n = 0; n < PCI_NUM_BARS; n++)
		target[n] = pci_bar_target(d, n);
	pthread_mutex_unlock(&bus->lock);

	for (n = 0; n < PCI_NUM_BARS; n++) {
		struct pci_bar *bar = &d->bar[n];
		uint32_t old = bar->mapped ? bar->mapped_base : 0;
		uint32_t now;
		int ret;

		if (old == target[n])
			continue;
		/* Unmap first: the new range may overlap the old one. */
		if (bar->mapped) {
			io_bus_unregister(pci_bar_bus(bus, bar), bar->mapped_base, bar->opaque);
			bar->mapped = false;
		}
		if (target[n]) {
			ret = io_bus_register(pci_bar_bus(bus, bar), target[n], bar->size,
					      bar->ops, bar->opaque, d->name);
			if (!ret) {
				bar->mapped = true;
				bar->mapped_base = target[n];
			} else {
				if (!err)
					err = ret;
				/*
				 * A guest that keeps poking a conflicting BAR
				 * must not flood the log: this pass retries on
				 * every command/BAR write.
				 */
				if (report && !bar->warned)
					pr_warn("pci 00:%02x.0 %s: %s BAR%d at %#x-%#x: %s, left unmapped",
						d->slot, d->name, bar->is_mem ? "memory" : "I/O",
						n, target[n], target[n] + bar->size - 1,
						strerror(-ret));
				else
					pr_debug("pci 00:%02x.0 %s: BAR%d at %#x: %s",
						 d->slot, d->name, n, target[n], strerror(-ret));
				if (report)
					bar->warned = true;
			}
		}
		now = bar->mapped ? bar->mapped_base : 0;
		if (now != old && d->bar_moved)
			d->bar_moved(d, n, old, now);
	}

	pthread_mutex_unlock(&bus->map_lock);
	return err;
}

/* The command bits that decide where d's BARs decode: I/O and/or memory. */
static uint16_t pci_dev_decode_bits(const struct pci_dev *d)
{
	uint16_t bits = 0;
	int n;

	for (n = 0; n < PCI_NUM_BARS; n++)
		if (d->bar[n].size)
			bits |= d->bar[n].is_mem ? PCI_COMMAND_MEMORY : PCI_COMMAND_IO;
	return bits;
}

/*
 * A config write to d, bus->lock held: apply it, then tell the device.
 * Returns true when BAR mappings need a re-sync once the lock is dropped.
 */
static bool pci_dev_write(struct pci_dev *d, unsigned int off, unsigned int size, uint32_t val)
{
	bool decode = pci_dev_cfg_write(d, off, size, val);

	if (d->cfg_write)
		d->cfg_write(d, off, size, val & all_ones(size));
	return decode && pci_dev_decode_bits(d);
}

uint32_t pci_cfg_read(struct pci_bus *bus, unsigned int slot, unsigned int off,
		      unsigned int size)
{
	struct pci_dev *d;
	uint32_t val;

	if (!cfg_range_ok(off, size))
		return all_ones(size);
	pthread_mutex_lock(&bus->lock);
	d = pci_bus_slot(bus, slot);
	val = d ? cfg_get(&d->cfg[off], size) : all_ones(size);
	pthread_mutex_unlock(&bus->lock);
	return val;
}

void pci_cfg_write(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int size,
		   uint32_t val)
{
	struct pci_dev *d;
	bool resync = false;

	if (!cfg_range_ok(off, size))
		return;
	pthread_mutex_lock(&bus->lock);
	d = pci_bus_slot(bus, slot);
	if (d)
		resync = pci_dev_write(d, off, size, val);
	pthread_mutex_unlock(&bus->lock);
	if (resync)
		pci_dev_sync_bars(d, true);
}

/*
 * Decode the latch for a data-window access at port 0xCFC + (off - 4).
 * Returns the slot, or -1 when nothing answers (bus->lock held).
 */
static int pci_bus_decode(struct pci_bus *bus, uint16_t off, unsigned int size,
			  unsigned int *reg)
{
	uint32_t addr = bus->config_address;
	unsigned int slot;

	if (!(addr & CONFIG_ADDRESS_ENABLE))
		return -1;
	/* One bus, single-function devices only. */
	if (((addr >> 16) & 0xff) != 0 || ((addr >> 8) & 0x7) != 0)
		return -1;
	slot = (addr >> 11) & 0x1f;
	*reg = (addr & 0xfc) + (off - 4);
	if (!bus->dev[slot] || !cfg_range_ok(*reg, size))
		return -1;
	return slot;
}

static uint32_t pci_cfg_io_read(void *opaque, uint16_t off, unsigned int size)
{
	struct pci_bus *bus = opaque;
	unsigned int reg;
	uint32_t val;
	int slot;

	if (off < 4) {
		/*
		 * Only a dword at 0xCF8 is the latch.  Narrower accesses
		 * belong to other (absent) chipset registers, and Linux's
		 * mechanism #2 probe must not find its registers here.
		 */
		if (off != 0 || size != 4)
			return all_ones(size);
		pthread_mutex_lock(&bus->lock);
		val = bus->config_address;
		pthread_mutex_unlock(&bus->lock);
		return val;
	}

	pthread_mutex_lock(&bus->lock);
	slot = pci_bus_decode(bus, off, size, &reg);
	val = slot < 0 ? all_ones(size) : cfg_get(&bus->dev[slot]->cfg[reg], size);
	pthread_mutex_unlock(&bus->lock);
	return val;
}

static void pci_cfg_io_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct pci_bus *bus = opaque;
	struct pci_dev *d = NULL;
	bool resync = false;
	unsigned int reg;
	int slot;

	if (off < 4) {
		/*
		 * pci_check_type1() writes a byte to 0xCFB before testing
		 * the latch with dwords: that byte must not land in it.
		 */
		if (off != 0 || size != 4)
			return;
		pthread_mutex_lock(&bus->lock);
		bus->config_address = val & ~0x3u;
		pthread_mutex_unlock(&bus->lock);
		return;
	}

	pthread_mutex_lock(&bus->lock);
	slot = pci_bus_decode(bus, off, size, &reg);
	if (slot >= 0) {
		d = bus->dev[slot];
		resync = pci_dev_write(d, reg, size, val);
	}
	pthread_mutex_unlock(&bus->lock);
	if (resync)
		pci_dev_sync_bars(d, true);
}

const struct io_ops pci_cfg_io_ops = {
	.read = pci_cfg_io_read,
	.write = pci_cfg_io_write,
};

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
		  uint16_t subsys_id, bool intx)
{
	memset(d, 0, sizeof(*d));
	d->name = name;

	cfg_put(&d->cfg[PCI_VENDOR_ID], 2, vendor);
	cfg_put(&d->cfg[PCI_DEVICE_ID], 2, device);
	d->cfg[PCI_REVISION_ID] = revision;
	cfg_put(&d->cfg[PCI_CLASS_PROG], 3, class_code);
	d->cfg[PCI_HEADER_TYPE] = 0;	/* type 0, single function */
	cfg_put(&d->cfg[PCI_SUBSYSTEM_VENDOR_ID], 2, subsys_vendor);
	cfg_put(&d->cfg[PCI_SUBSYSTEM_ID], 2, subsys_id);
	d->cfg[PCI_INTERRUPT_PIN] = intx ? 1 : 0;

	/*
	 * Decode enables and bus mastering are all a driver flips.  Both
	 * decode bits are writable whichever BARs there are, as Linux sets
	 * them together in pci_enable_device().  INTx disable is
	 * optional in PCI 2.3 and not implemented, so it reads as 0 rather
	 * than claiming an effect it does not have (legacy virtio drivers
	 * never set it).
	 */
	cfg_put(&d->wmask[PCI_COMMAND], 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
		PCI_COMMAND_MASTER);
	/* Scratch for the OS: Linux writes the IRQ it routed here. */
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

int pci_dev_add_io_bar(struct pci_dev *d, int n, uint32_t size,
		       const struct io_ops *ops, void *opaque)
{
	unsigned int off;
	uint32_t mask;

	if (n < 0 || n >= PCI_NUM_BARS || !IS_POW2(size) || size < 4 || size > 256 || !ops)
		return -EINVAL;
	if (d->bar[n].size || d->bus)
		return -EBUSY;

	d->bar[n] = (struct pci_bar) { .size = size, .ops = ops, .opaque = opaque };
	off = PCI_BASE_ADDRESS_0 + 4 * n;
	cfg_put(&d->cfg[off], 4, PCI_BASE_ADDRESS_SPACE_IO);
	/*
	 * A 16-bit I/O decoder: the upper half is hardwired to 0, which the
	 * PCI spec allows and Linux's sizing expects (it masks the answer
	 * with IO_SPACE_LIMIT).  The size bits and bit 0 are read-only.
	 */
	mask = ~(size - 1) & 0xffff & PCI_BASE_ADDRESS_IO_MASK;
	cfg_put(&d->wmask[off], 4, mask);
	return 0;
}

int pci_dev_add_mem_bar(struct pci_dev *d, int n, uint32_t size,
			const struct io_ops *ops, void *opaque)
{
	unsigned int off;

	if (n < 0 || n >= PCI_NUM_BARS || !IS_POW2(size) || size < 16 ||
	    size > IO_RANGE_MAX_LEN || !ops)
		return -EINVAL;
	if (d->bar[n].size || d->bus)
		return -EBUSY;

	d->bar[n] = (struct pci_bar) {
		.size = size, .is_mem = true, .ops = ops, .opaque = opaque,
	};
	off = PCI_BASE_ADDRESS_0 + 4 * n;
	/* Type bits 0: 32-bit, anywhere below 4 GiB, not prefetchable. */
	cfg_put(&d->cfg[off], 4, 0);
	/* The size bits and the type bits are read-only. */
	cfg_put(&d->wmask[off], 4, ~(size - 1) & PCI_BASE_ADDRESS_MEM_MASK);
	return 0;
}

int pci_dev_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, unsigned int len,
		    const void *body_wmask)
{
	unsigned int off = ALIGN_UP(d->cap_end ? d->cap_end : PCI_CAP_FIRST, 4u);

	if (len && !body)
		return -EINVAL;
	if (d->bus)
		return -EBUSY;
	if (off > PCI_CFG_SIZE - PCI_CAP_BODY || len > PCI_CFG_SIZE - PCI_CAP_BODY - off)
		return -ENOSPC;

	d->cfg[off + PCI_CAP_LIST_ID] = cap_id;
	d->cfg[off + PCI_CAP_LIST_NEXT] = 0;
	if (len)
		memcpy(&d->cfg[off + PCI_CAP_BODY], body, len);
	if (len && body_wmask)
		memcpy(&d->wmask[off + PCI_CAP_BODY], body_wmask, len);
	/* The list is walked in order: new ones go at its end. */
	if (d->cap_last)
		d->cfg[d->cap_last + PCI_CAP_LIST_NEXT] = off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = off;
	d->cap_end = off + PCI_CAP_BODY + len;
	return off;
}

int pci_bus_init(struct pci_bus *bus, struct io_bus *pio, struct io_bus *mmio)
{
	struct pci_dev *hb = &bus->host_bridge;
	int ret;

	memset(bus, 0, sizeof(*bus));
	bus->pio = pio;
	bus->mmio = mmio;
	bus->io_next = PCI_IO_BASE;
	bus->mmio_next = PCI_MMIO_BASE;
	bus->next_gsi = PCI_IRQ_FIRST_GSI;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->map_lock, NULL);

	/* i440FX: what Linux expects at 00:00.0 on a PC without ACPI. */
	pci_dev_init(hb, "i440fx", 0x8086, 0x1237, 0, 0x060000, 0, 0, false);
	hb->bus = bus;
	hb->slot = 0;
	bus->dev[0] = hb;

	ret = io_bus_register(pio, PCI_CONFIG_ADDRESS, CONFIG_PORTS, &pci_cfg_io_ops, bus,
			      "pci-conf1");
	if (ret) {
		pr_err("pci: cannot register ports %#x-%#x: %s", PCI_CONFIG_ADDRESS,
		       PCI_CONFIG_ADDRESS + CONFIG_PORTS - 1, strerror(-ret));
		pthread_mutex_destroy(&bus->map_lock);
		pthread_mutex_destroy(&bus->lock);
		return ret;
	}
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	unsigned int slot;
	int n;

	io_bus_unregister(bus->pio, PCI_CONFIG_ADDRESS, bus);

	/*
	 * No bar_moved here: at teardown the device models may already be
	 * gone, and their ioeventfds go with the VM anyway.
	 */
	pthread_mutex_lock(&bus->map_lock);
	pthread_mutex_lock(&bus->lock);
	for (slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		struct pci_dev *d = bus->dev[slot];

		if (!d)
			continue;
		for (n = 0; n < PCI_NUM_BARS; n++) {
			struct pci_bar *bar = &d->bar[n];

			if (!bar->mapped)
				continue;
			io_bus_unregister(pci_bar_bus(bus, bar), bar->mapped_base, bar->opaque);
			bar->mapped = false;
		}
		d->bus = NULL;
		bus->dev[slot] = NULL;
	}
	pthread_mutex_unlock(&bus->lock);
	pthread_mutex_unlock(&bus->map_lock);

	pthread_mutex_destroy(&bus->map_lock);
	pthread_mutex_destroy(&bus->lock);
}

/*
 * Addresses for d's BARs, as firmware would pick them: I/O BARs from
 * io_next, each aligned to its size; memory BARs from mmio_next, each
 * aligned to its size and to at least a page, so that no two BARs share a
 * page (the PCI spec's advice: an OS maps each with its own attributes,
 * and an MSI-X table must sit on pages of its own).  On success *io_end and
 * *mmio_end are the new next-free addresses.  bus->lock held.
 */
static int pci_bus_place_bars(const struct pci_bus *bus, const struct pci_dev *d,
			      uint32_t base[PCI_NUM_BARS], uint32_t *io_end, uint32_t *mmio_end)
{
	uint64_t io = bus->io_next, mem = bus->mmio_next;
	int n;

	for (n = 0; n < PCI_NUM_BARS; n++) {
		uint32_t size = d->bar[n].size;

		if (!size)
			continue;
		if (!d->bar[n].is_mem) {
			io = ALIGN_UP(io, size);
			if (io + size > PCI_IO_END) {
				pr_err("pci: %s: no I/O space left for BAR%d (%u bytes)",
				       d->name, n, size);
				return -ENOSPC;
			}
			base[n] = io;
			io += size;
			continue;
		}
		if (!bus->mmio) {
			pr_err("pci: %s: BAR%d is a memory BAR, and this bus has no MMIO bus",
			       d->name, n);
			return -EINVAL;
		}
		mem = ALIGN_UP(mem, MAX(size, PCI_MMIO_BAR_ALIGN));
		if (mem + size > PCI_MMIO_END) {
			pr_err("pci: %s: no memory space left for BAR%d (%u bytes)",
			       d->name, n, size);
			return -ENOSPC;
		}
		base[n] = mem;
		mem += size;
	}
	*io_end = io;
	*mmio_end = mem;
	return 0;
}

/* What firmware would have done before handing over to the OS. */
static void pci_dev_firmware_setup(struct pci_dev *d, const uint32_t base[PCI_NUM_BARS],
				   unsigned int gsi)
{
	uint16_t cmd;
	int n;

	for (n = 0; n < PCI_NUM_BARS; n++)
		if (base[n])
			cfg_put(&d->cfg[PCI_BASE_ADDRESS_0 + 4 * n], 4, base[n] |
				(d->bar[n].is_mem ? 0 : PCI_BASE_ADDRESS_SPACE_IO));
	d->cfg[PCI_INTERRUPT_LINE] = gsi;
	cmd = cfg_get(&d->cfg[PCI_COMMAND], 2);
	cfg_put(&d->cfg[PCI_COMMAND], 2, cmd | pci_dev_decode_bits(d));
}

/* The GSI for d's INTA#, 0 when it has none; -ENOSPC when none is left. */
static int pci_bus_pick_gsi(const struct pci_bus *bus, const struct pci_dev *d)
{
	if (!d->cfg[PCI_INTERRUPT_PIN])
		return 0;
	if (bus->next_gsi > PCI_IRQ_LAST_GSI) {
		pr_err("pci: %s: no interrupt line left (GSIs %d-%d in use)",
		       d->name, PCI_IRQ_FIRST_GSI, PCI_IRQ_LAST_GSI);
		return -ENOSPC;
	}
	return bus->next_gsi;
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *d, unsigned int slot)
{
	uint8_t saved_cfg[PCI_CFG_SIZE];
	uint32_t base[PCI_NUM_BARS] = { 0 };
	uint32_t io_end, mmio_end, saved_io_next, saved_mmio_next;
	unsigned int saved_next_gsi;
	int gsi, ret;

	if (slot >= PCI_MAX_DEVICES)
		return -EINVAL;

	pthread_mutex_lock(&bus->lock);
	if (bus->dev[slot] || d->bus) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ret = pci_bus_place_bars(bus, d, base, &io_end, &mmio_end);
	if (ret)
		goto out_unlock;
	gsi = pci_bus_pick_gsi(bus, d);
	if (gsi < 0) {
		ret = gsi;
		goto out_unlock;
	}

	/* Keep what is needed to undo the add if an io_bus says no. */
	memcpy(saved_cfg, d->cfg, sizeof(saved_cfg));
	saved_io_next = bus->io_next;
	saved_mmio_next = bus->mmio_next;
	saved_next_gsi = bus->next_gsi;

	pci_dev_firmware_setup(d, base, gsi);
	d->slot = slot;
	d->gsi = gsi;
	d->bus = bus;
	bus->dev[slot] = d;
	bus->io_next = io_end;
	bus->mmio_next = mmio_end;
	if (gsi)
		bus->next_gsi++;
	pthread_mutex_unlock(&bus->lock);

	ret = pci_dev_sync_bars(d, false);
	if (!ret) {
		pr_debug("pci 00:%02x.0 %s: gsi %d", slot, d->name, gsi);
		return 0;
	}

	pr_err("pci: %s: cannot map its BARs: %s", d->name, strerror(-ret));
	pthread_mutex_lock(&bus->lock);
	memcpy(d->cfg, saved_cfg, sizeof(saved_cfg));	/* decode off again */
	pthread_mutex_unlock(&bus->lock);
	pci_dev_sync_bars(d, false);			/* unmap the BARs that made it */
	pthread_mutex_lock(&bus->lock);
	bus->dev[slot] = NULL;
	bus->io_next = saved_io_next;
	bus->mmio_next = saved_mmio_next;
	bus->next_gsi = saved_next_gsi;
	d->bus = NULL;
	d->gsi = 0;
	d->slot = 0;
out_unlock:
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

unsigned int pci_bus_irqs(struct pci_bus *bus, struct pci_irq *out, unsigned int max)
{
	unsigned int slot, nr = 0;

	pthread_mutex_lock(&bus->lock);
	for (slot = 1; slot < PCI_MAX_DEVICES && nr < max; slot++) {
		struct pci_dev *d = bus->dev[slot];

		if (!d || !d->gsi)
			continue;
		out[nr++] = (struct pci_irq) {
			.slot = slot,
			.pin = d->cfg[PCI_INTERRUPT_PIN],
			.gsi = d->gsi,
		};
	}
	pthread_mutex_unlock(&bus->lock);
	return nr;
}
