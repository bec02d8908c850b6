/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_IO_BUS_H
#define TINYVMM_IO_BUS_H

/*
 * Port I/O dispatch: the vCPU loop hands every KVM_EXIT_IO access to
 * io_bus_access(), which finds the device owning the port.  Devices see
 * the offset from their base and a size of 1, 2 or 4 bytes.  An access
 * nobody claims reads as all ones and is otherwise ignored, as on a PC.
 * Nothing here uses KVM, so devices, PCI and their tests build on it alone.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	uint32_t (*read)(void *opaque, uint16_t off, unsigned int size);
	void (*write)(void *opaque, uint16_t off, unsigned int size, uint32_t val);
};

struct io_range {
	uint16_t base;
	uint16_t len;
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

/* -EBUSY if it overlaps a registered range, -ENOSPC when full. */
int io_bus_register(struct io_bus *bus, uint16_t base, uint16_t len,
		    const struct io_ops *ops, void *opaque, const char *name);
int io_bus_unregister(struct io_bus *bus, uint16_t base, void *opaque);

/* data holds size bytes, little-endian; returns false if unclaimed. */
bool io_bus_access(struct io_bus *bus, uint16_t port, bool is_write,
		   void *data, unsigned int size);

#endif
