// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "lib/util.h"
#include "lib/io_bus.h"

void io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_destroy(struct io_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static bool ranges_overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

int io_bus_register(struct io_bus *bus, uint16_t base, uint16_t len,
		    const struct io_ops *ops, void *opaque, const char *name)
{
	unsigned int i;
	int ret = 0;

	if (len == 0 || (uint32_t)base + len > 0x10000)
		return -EINVAL;

	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->nr; i++) {
		if (ranges_overlap(base, len, bus->range[i].base, bus->range[i].len)) {
			ret = -EBUSY;
			goto out;
		}
	}
	if (bus->nr == IO_BUS_MAX_RANGES) {
		ret = -ENOSPC;
		goto out;
	}
	bus->range[bus->nr++] = (struct io_range) {
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint16_t base, void *opaque)
{
	unsigned int i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->nr; i++) {
		if (bus->range[i].base == base && bus->range[i].opaque == opaque) {
			bus->range[i] = bus->range[--bus->nr];
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool io_bus_access(struct io_bus *bus, uint16_t port, bool is_write,
		   void *data, unsigned int size)
{
	struct io_range r = { 0 };
	bool found = false;
	uint32_t val = 0;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->nr; i++) {
		/* An access must lie wholly inside one device's range. */
		if (port >= bus->range[i].base &&
		    (uint32_t)port + size <= (uint32_t)bus->range[i].base + bus->range[i].len) {
			/* Copy only what the call needs: accesses changes under us. */
			r.base = bus->range[i].base;
			r.ops = bus->range[i].ops;
			r.opaque = bus->range[i].opaque;
			__atomic_fetch_add(&bus->range[i].accesses, 1, __ATOMIC_RELAXED);
			found = true;
			break;
		}
	}
	/*
	 * Call the device without the lock: a PCI config write that moves a
	 * BAR re-registers ranges from inside this call.  Devices live until
	 * the VM is torn down, so the copied ops/opaque stay valid.
	 */
	pthread_rwlock_unlock(&bus->lock);

	if (!found) {
		__atomic_fetch_add(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, size);
		return false;
	}
	if (is_write) {
		memcpy(&val, data, size);
		if (r.ops->write)
			r.ops->write(r.opaque, port - r.base, size, val);
	} else {
		val = r.ops->read ? r.ops->read(r.opaque, port - r.base, size) : 0xffffffff;
		memcpy(data, &val, size);
	}
	return true;
}
