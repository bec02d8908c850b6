/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_PCI_H
#define TINYVMM_PCI_H

/*
 * PCI bus 0: configuration mechanism #1 on ports 0xCF8/0xCFC, a host
 * bridge at 00:00.0, and one single-function device per slot.
 *
 * A device describes its identity, its BARs and its capabilities; the bus
 * keeps the 256-byte configuration space with per-byte write masks, answers
 * BAR sizing, and maps each I/O BAR on the port-I/O bus whenever the guest
 * has it at a valid address with I/O decode enabled in the command
 * register, and each memory BAR on the MMIO bus likewise with memory
 * decode enabled.  The device hears about a BAR move through bar_moved,
 * which is how the VMM moves the BAR's ioeventfd along with it, and about
 * config writes to it through cfg_write (how capability registers such as
 * MSI-X's take effect).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/io_bus.h"
#include "pci/pci_irq.h"

#define PCI_MAX_DEVICES		32
#define PCI_NUM_BARS		6
#define PCI_CFG_SIZE		256

#define PCI_CONFIG_ADDRESS	0xcf8
#define PCI_CONFIG_DATA		0xcfc

/*
 * Type-0 header registers used here, with the names of Linux's
 * pci_regs.h (which cannot be included alongside: it has its own
 * PCI_IO_BASE).
 */
#define PCI_VENDOR_ID		0x00	/* 16 bits */
#define PCI_DEVICE_ID		0x02	/* 16 bits */
#define PCI_COMMAND		0x04	/* 16 bits */
#define  PCI_COMMAND_IO		0x1
#define  PCI_COMMAND_MEMORY	0x2
#define  PCI_COMMAND_MASTER	0x4
#define  PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS		0x06	/* 16 bits */
#define  PCI_STATUS_CAP_LIST	0x10
#define PCI_REVISION_ID		0x08
#define PCI_CLASS_PROG		0x09	/* class code: 0x09-0x0b */
#define PCI_CLASS_DEVICE	0x0a	/* 16 bits: base class, sub class */
#define PCI_HEADER_TYPE		0x0e
#define PCI_BASE_ADDRESS_0	0x10	/* 6 dwords */
#define  PCI_BASE_ADDRESS_SPACE_IO 0x1
#define  PCI_BASE_ADDRESS_IO_MASK (~0x3u)
#define  PCI_BASE_ADDRESS_MEM_MASK (~0xfu)	/* bits 3:0 0: 32-bit, not prefetchable */
#define PCI_SUBSYSTEM_VENDOR_ID	0x2c	/* 16 bits */
#define PCI_SUBSYSTEM_ID	0x2e	/* 16 bits */
#define PCI_CAPABILITY_LIST	0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_INTERRUPT_PIN	0x3d
#define PCI_CAP_LIST_ID		0	/* in a capability: its ID, */
#define PCI_CAP_LIST_NEXT	1	/* the next one's offset (0 = last), */
#define PCI_CAP_BODY		2	/* then its registers */
#define PCI_CAP_FIRST		0x40	/* capabilities go after the header */

/* I/O BARs are placed from here, each aligned to its size. */
#define PCI_IO_BASE		0xc000
#define PCI_IO_END		0x10000

/*
 * Memory BARs are placed from here, each aligned to its size and to at
 * least a page: in the guest-RAM gap, below the IOAPIC (checked at
 * compile time in pci.c and vmm/vm.c).
 */
#define PCI_MMIO_BASE		0xe0000000u
#define PCI_MMIO_END		0xfec00000u
#define PCI_MMIO_BAR_ALIGN	0x1000u

/* IOAPIC pins given to PCI INTx, one per device (no sharing). */
#define PCI_IRQ_FIRST_GSI	16
#define PCI_IRQ_LAST_GSI	23

struct pci_dev;

struct pci_bar {
	uint32_t size;			/* power of two; 0 = unused */
	bool is_mem;			/* memory BAR (MMIO bus), else I/O (port bus) */
	const struct io_ops *ops;	/* accesses inside the BAR */
	void *opaque;
	uint32_t mapped_base;		/* where it is on its io_bus, if mapped */
	bool mapped;
	bool warned;			/* a failed mapping was reported once */
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];	/* bits the guest may change */
	struct pci_bar bar[PCI_NUM_BARS];
	unsigned int slot;
	unsigned int gsi;		/* IOAPIC pin of INTA#, 0 = no interrupt */
	const char *name;
	struct pci_bus *bus;
	/*
	 * Called (from a vCPU thread, bus lock not held) after BAR bar
	 * moved: old_base/new_base are 0 when it was/is not mapped.
	 */
	void (*bar_moved)(struct pci_dev *d, int bar, uint32_t old_base, uint32_t new_base);
	/*
	 * Called after a config write to d (from the guest or pci_cfg_write)
	 * has been applied through wmask; val is the size bytes as written,
	 * before masking.  Runs with the bus lock HELD, so it must not call
	 * back into the bus (pci_cfg_read/write, pci_bus_*).  It may read
	 * d->cfg directly: the lock keeps it stable.  It may take locks of
	 * its own, as leaves: nobody may call into the bus while holding one.
	 */
	void (*cfg_write)(struct pci_dev *d, unsigned int off, unsigned int size, uint32_t val);
	void *owner;			/* the device model behind this function */
	unsigned int cap_end;		/* first byte after the last capability */
	uint8_t cap_last;		/* offset of the last capability, 0 = none */
};

struct pci_bus {
	struct pci_dev *dev[PCI_MAX_DEVICES];
	struct pci_dev host_bridge;
	uint32_t config_address;	/* the 0xCF8 latch */
	struct io_bus *pio;
	struct io_bus *mmio;		/* NULL: no memory BARs on this bus */
	/*
	 * Config space and the latch.  Held across cfg_write hooks, so
	 * whatever a hook locks comes after it.
	 */
	pthread_mutex_t lock;
	/*
	 * Serialises applying BAR mappings of either kind (io_bus calls and
	 * bar_moved), which happens with lock released.  Taken before lock,
	 * never after it; bar_moved runs under it and so must not write a BAR
	 * or the command register.
	 */
	pthread_mutex_t map_lock;
	uint32_t io_next;		/* next free I/O BAR address */
	uint32_t mmio_next;		/* next free memory BAR address */
	unsigned int next_gsi;
};

/*
 * Registers 0xCF8-0xCFF on pio and puts the host bridge at slot 0.
 * Memory BARs are mapped on mmio; with mmio NULL, pci_bus_add() refuses
 * a device that has any.
 */
int pci_bus_init(struct pci_bus *bus, struct io_bus *pio, struct io_bus *mmio);
void pci_bus_destroy(struct pci_bus *bus);

/*
 * Identity of a type-0 function: vendor/device, revision, 24-bit class
 * code, subsystem vendor/device, INTA# wanted or not.  Clears *d, so set
 * bar_moved, cfg_write and owner after it.
 */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
		  uint16_t subsys_id, bool intx);

/*
 * Declare I/O BAR n (size a power of two, 4..256 bytes), before
 * pci_bus_add().  -EINVAL for a bad n or size, -EBUSY if n is taken.
 */
int pci_dev_add_io_bar(struct pci_dev *d, int n, uint32_t size,
		       const struct io_ops *ops, void *opaque);

/*
 * Declare memory BAR n: 32-bit, not prefetchable, size a power of two,
 * 16..0x10000 bytes, before pci_bus_add().  The device's ops see offsets
 * inside the BAR and accesses of 1, 2 or 4 bytes.  -EINVAL for a bad n or
 * size, -EBUSY if n is taken.
 */
int pci_dev_add_mem_bar(struct pci_dev *d, int n, uint32_t size,
			const struct io_ops *ops, void *opaque);

/*
 * Append a capability to d's list, before pci_bus_add(): the ID byte, the
 * next pointer, then body (len bytes, len may be 0).  body_wmask gives,
 * per byte of body, the bits the guest may write (NULL: all read-only);
 * the header bytes are always read-only.  Returns the capability's offset
 * in config space (dword aligned, PCI_CAP_FIRST up), or -ENOSPC when it
 * does not fit below 256, -EINVAL for a body of len > 0 that is NULL,
 * -EBUSY once d is on a bus.
 */
int pci_dev_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, unsigned int len,
		    const void *body_wmask);

/*
 * Put d in slot (1-31): assigns its BAR addresses and its INTA# GSI
 * (written to Interrupt Line), enables I/O decode if it has I/O BARs and
 * memory decode if it has memory BARs, as firmware would, and maps the
 * BARs, calling bar_moved(d, n, 0, base) for each.  -EINVAL for a slot
 * past 31 or memory BARs on a bus without an MMIO bus, -EBUSY for a used
 * slot (0 is the host bridge), -ENOSPC when out of GSIs, I/O or memory
 * space; a BAR that cannot be registered on its io_bus fails the add with
 * that error.  Nothing is changed on failure.
 */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *d, unsigned int slot);

/* For the MP table: slot, pin and GSI of every device with INTx. */
unsigned int pci_bus_irqs(struct pci_bus *bus, struct pci_irq *out, unsigned int max);

/*
 * Raw config access (offsets 0-255, size 1/2/4, naturally aligned), with
 * the port path's semantics: an empty slot reads as all ones, a write may
 * move BARs.  For tests and VMM-side setup.
 */
uint32_t pci_cfg_read(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int size);
void pci_cfg_write(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int size,
		   uint32_t val);

extern const struct io_ops pci_cfg_io_ops;	/* opaque = struct pci_bus * */

#endif
