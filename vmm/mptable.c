// SPDX-License-Identifier: MIT
/*
 * Intel MultiProcessor Specification 1.4 table.  Without ACPI this is how
 * Linux learns about the APs, the IOAPIC and how ISA and PCI interrupts
 * reach the IOAPIC pins.
 */
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define MP_SPEC_REV		4	/* 1.4 */
#define MP_MAX_CPUS		254	/* APIC id 255 is broadcast; IOAPIC takes nr_cpus */
#define MP_IOAPIC_PINS		24	/* KVM's in-kernel IOAPIC */

#define MP_BUS_PCI		0
#define MP_BUS_ISA		1
#define MP_ISA_IRQS		16

enum {
	MP_ENTRY_PROCESSOR,
	MP_ENTRY_BUS,
	MP_ENTRY_IOAPIC,
	MP_ENTRY_INTSRC,
	MP_ENTRY_LINTSRC,
};

enum {
	MP_IRQ_INT,
	MP_IRQ_NMI,
	MP_IRQ_SMI,
	MP_IRQ_EXTINT,
};

#define MP_CPU_ENABLED		0x01
#define MP_CPU_BSP		0x02
#define MP_IOAPIC_ENABLED	0x01
#define MP_IRQFLAG_CONFORMING	0x00
#define MP_IRQFLAG_PCI		0x0f	/* active low, level triggered */

#define MP_LAPIC_VERSION	0x14
#define MP_IOAPIC_VERSION	0x11
/* Family 6 signature; FPU and APIC feature bits, what Linux prints. */
#define MP_CPU_SIGNATURE	0x00000600
#define MP_CPU_FEATURES		((1u << 0) | (1u << 9))

struct mp_floating {
	char signature[4];		/* "_MP_" */
	uint32_t physptr;		/* config table */
	uint8_t length;			/* in 16-byte units */
	uint8_t specrev;
	uint8_t checksum;
	uint8_t feature[5];		/* 0: config table present */
} __attribute__((packed));

struct mp_config {
	char signature[4];		/* "PCMP" */
	uint16_t length;		/* header and base entries */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;		/* number of base entries */
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;		/* signature: family/model/stepping */
	uint32_t featureflag;		/* CPUID.1:EDX */
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

/* Both the I/O and the local interrupt entries have this layout. */
struct mp_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mp_config) == 44, "MP config header");
_Static_assert(sizeof(struct mp_processor) == 20, "MP processor entry");

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

/* Cursor over the table being built; the size was checked beforehand. */
struct mp_writer {
	uint8_t *p;
	uint16_t count;
};

static void *mp_entry(struct mp_writer *w, size_t size)
{
	void *e = w->p;

	w->p += size;
	w->count++;
	return e;
}

static void mp_add_intsrc(struct mp_writer *w, uint8_t type, uint8_t irqtype,
			  uint16_t flags, uint8_t bus, uint8_t busirq,
			  uint8_t dstapic, uint8_t dstirq)
{
	struct mp_intsrc *e = mp_entry(w, sizeof(*e));

	e->type = type;
	e->irqtype = irqtype;
	e->irqflag = flags;
	e->srcbus = bus;
	e->srcbusirq = busirq;
	e->dstapic = dstapic;
	e->dstirq = dstirq;
}

static void mp_add_bus(struct mp_writer *w, uint8_t id, const char *name)
{
	struct mp_bus *e = mp_entry(w, sizeof(*e));

	e->type = MP_ENTRY_BUS;
	e->busid = id;
	memcpy(e->bustype, name, sizeof(e->bustype));
}

static int mp_check_pci_irqs(const struct pci_irq *irqs, unsigned int n,
			     uint32_t *pci_pins)
{
	unsigned int i;

	if (n && !irqs)
		return -EINVAL;
	*pci_pins = 0;
	for (i = 0; i < n; i++) {
		if (irqs[i].slot >= 32 || irqs[i].pin < 1 || irqs[i].pin > 4 ||
		    irqs[i].gsi >= MP_IOAPIC_PINS) {
			pr_err("mptable: bad PCI interrupt (slot %u pin %u -> IOAPIC pin %u)",
			       irqs[i].slot, irqs[i].pin, irqs[i].gsi);
			return -EINVAL;
		}
		*pci_pins |= 1u << irqs[i].gsi;
	}
	return 0;
}

/*
 * ISA IRQ n is on IOAPIC pin n, IRQ 0 included: KVM's default GSI routing
 * (no KVM_SET_GSI_ROUTING) delivers the in-kernel PIT's IRQ 0 to pin 0,
 * unlike a PC's pin-2 override.  Saying pin 2 here makes Linux report
 * "MP-BIOS bug: 8254 timer not connected to IO-APIC".
 */
static uint8_t isa_irq_pin(unsigned int irq)
{
	return irq;
}

int mptable_write(struct guest_mem *gm, unsigned int nr_cpus,
		  const struct pci_irq *pci_irqs, unsigned int nr_pci_irqs)
{
	const uint8_t ioapic_id = nr_cpus;
	struct mp_floating *mpf;
	struct mp_config *mpc;
	struct mp_writer w;
	uint32_t pci_pins;
	unsigned int i;
	size_t size;
	uint8_t *base;
	int ret;

	if (nr_cpus == 0 || nr_cpus > MP_MAX_CPUS) {
		pr_err("mptable: %u vCPUs is out of range (1-%d)", nr_cpus, MP_MAX_CPUS);
		return -EINVAL;
	}
	ret = mp_check_pci_irqs(pci_irqs, nr_pci_irqs, &pci_pins);
	if (ret)
		return ret;

	/* Upper bound: every ISA IRQ gets an entry. */
	size = sizeof(*mpc) + nr_cpus * sizeof(struct mp_processor) +
	       2 * sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
	       (MP_ISA_IRQS + (size_t)nr_pci_irqs + 2) * sizeof(struct mp_intsrc);
	if (size > BIOS_AREA_END - BIOS_AREA_START - sizeof(*mpf)) {
		pr_err("mptable: %u vCPUs and %u PCI interrupts do not fit in the BIOS area",
		       nr_cpus, nr_pci_irqs);
		return -ENOSPC;
	}
	base = gmem_ptr(gm, BIOS_AREA_START, sizeof(*mpf) + size);
	if (!base) {
		pr_err("mptable: guest RAM does not cover the BIOS area at 0x%llx",
		       BIOS_AREA_START);
		return -EFAULT;
	}
	memset(base, 0, sizeof(*mpf) + size);

	mpf = (struct mp_floating *)base;
	mpc = (struct mp_config *)(base + sizeof(*mpf));
	w.p = (uint8_t *)(mpc + 1);
	w.count = 0;

	for (i = 0; i < nr_cpus; i++) {
		struct mp_processor *e = mp_entry(&w, sizeof(*e));

		e->type = MP_ENTRY_PROCESSOR;
		e->apicid = i;
		e->apicver = MP_LAPIC_VERSION;
		e->cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
		e->cpufeature = MP_CPU_SIGNATURE;
		e->featureflag = MP_CPU_FEATURES;
	}

	mp_add_bus(&w, MP_BUS_PCI, "PCI   ");
	mp_add_bus(&w, MP_BUS_ISA, "ISA   ");

	{
		struct mp_ioapic *e = mp_entry(&w, sizeof(*e));

		e->type = MP_ENTRY_IOAPIC;
		e->apicid = ioapic_id;
		e->apicver = MP_IOAPIC_VERSION;
		e->flags = MP_IOAPIC_ENABLED;
		e->apicaddr = IOAPIC_ADDR;
	}

	for (i = 0; i < MP_ISA_IRQS; i++) {
		/*
		 * IRQ 2 is the cascade and has no pin of its own; a pin a PCI
		 * device uses is level/low, not ISA's.
		 */
		if (i == 2 || pci_pins & (1u << isa_irq_pin(i)))
			continue;
		mp_add_intsrc(&w, MP_ENTRY_INTSRC, MP_IRQ_INT, MP_IRQFLAG_CONFORMING,
			      MP_BUS_ISA, i, ioapic_id, isa_irq_pin(i));
	}
	for (i = 0; i < nr_pci_irqs; i++)
		mp_add_intsrc(&w, MP_ENTRY_INTSRC, MP_IRQ_INT, MP_IRQFLAG_PCI, MP_BUS_PCI,
			      pci_irqs[i].slot << 2 | (pci_irqs[i].pin - 1),
			      ioapic_id, pci_irqs[i].gsi);

	/* Virtual wire: the PIC on LINT0, NMI on LINT1, on every LAPIC. */
	mp_add_intsrc(&w, MP_ENTRY_LINTSRC, MP_IRQ_EXTINT, MP_IRQFLAG_CONFORMING,
		      MP_BUS_ISA, 0, 0xff, 0);
	mp_add_intsrc(&w, MP_ENTRY_LINTSRC, MP_IRQ_NMI, MP_IRQFLAG_CONFORMING,
		      MP_BUS_ISA, 0, 0xff, 1);

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = w.p - (uint8_t *)mpc;
	mpc->spec = MP_SPEC_REV;
	memcpy(mpc->oem, "TINYVMM ", sizeof(mpc->oem));
	memcpy(mpc->product, "TINYVMM     ", sizeof(mpc->product));
	mpc->oemcount = w.count;
	mpc->lapic = LAPIC_ADDR;
	mpc->checksum = mp_checksum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = BIOS_AREA_START + sizeof(*mpf);
	mpf->length = 1;
	mpf->specrev = MP_SPEC_REV;
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
	return 0;
}
