/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_PCI_IRQ_H
#define TINYVMM_PCI_IRQ_H

/*
 * Where one PCI function's INTx goes: what pci_bus_irqs() reports and
 * mptable_write() (vmm/boot.h) turns into MP table interrupt entries.  Kept
 * apart from pci.h so that the loaders' header needs nothing else of PCI.
 */
#include <stdint.h>

struct pci_irq {
	uint8_t slot;		/* PCI device number on bus 0 */
	uint8_t pin;		/* 1 = INTA# ... 4 = INTD# */
	uint8_t gsi;		/* IOAPIC pin it is wired to */
};

#endif
