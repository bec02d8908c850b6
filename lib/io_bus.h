/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_IO_BUS_H
#define TINYVMM_IO_BUS_H

/*
 * Address-decoded dispatch, one type for both spaces a vCPU exits on:
 * the port-I/O bus (KVM_EXIT_IO, 16-bit ports) and the MMIO bus
 * (KVM_EXIT_MMIO, 64-bit guest physical addresses).  io_bus_access()
 * finds the range that wholly contains the access; its device sees the
 * offset from the range's base and a size of 1, 2 or 4 bytes (an 8-byte
 * MMIO access reaches it as two 4-byte ones).  A range is at most 64 KiB,
 * so offsets stay 16 bits.  An access nobody claims reads as all ones and
 * is otherwise ignored, as on a PC.  Nothing here uses KVM, so devices,
 * PCI and their tests build on it alone.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	uint32_t (*read)(void *opaque, uint16_t off, unsigned int size);
	void (*write)(void *opaque, uint16_t off, unsigned int size, uint32_t val);
};

#define IO_RANGE_MAX_LEN	0x10000u

struct io_range {
	uint64_t base;
	uint32_t len;		/* 1 .. IO_RANGE_MAX_LEN */
	const struct io_ops *ops;
	void *opaque;
	const char *name;
	uint64_t accesses;	/* for --stats */
};

#define IO_BUS_MAX_RANGES 64

struct io_bus {
	pthread_rwlock_t lock;	/* PCI BAR moves re-register at run time */
	struct io_range range[IO_BUS_MAX_RANGES];
	unsigned int nr;
	uint64_t unclaimed;
};

void io_bus_init(struct io_bus *bus);
void io_bus_destroy(struct io_bus *bus);

/*
 * -EINVAL for a len of 0 or above IO_RANGE_MAX_LEN, or a range that would
 * run past the top of the 64-bit space; -EBUSY if it overlaps a
 * registered range, -ENOSPC when full.
 */
int io_bus_register(struct io_bus *bus, uint64_t base, uint32_t len,
		    const struct io_ops *ops, void *opaque, const char *name);
int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque);

/*
 * data holds size bytes, little-endian; size is 1, 2, 4 or 8.  Returns
 * false if unclaimed: no range holds all of [addr, addr + size), or the
 * size is none of those (a read then fills data with ones).
 */
bool io_bus_access(struct io_bus *bus, uint64_t addr, bool is_write,
		   void *data, unsigned int size);

#endif
