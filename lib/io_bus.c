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

/*
 * Compared by last byte, not by end: a range may end at the top of the
 * 64-bit space, where base + len wraps to 0.
 */
static uint64_t range_last(uint64_t base, uint32_t len)
{
	return base + (len - 1);
}

static bool ranges_overlap(uint64_t a, uint32_t alen, uint64_t b, uint32_t blen)
{
	return a <= range_last(b, blen) && b <= range_last(a, alen);
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint32_t len,
		    const struct io_ops *ops, void *opaque, const char *name)
{
	unsigned int i;
	int ret = 0;

	if (len == 0 || len > IO_RANGE_MAX_LEN || base > UINT64_MAX - (len - 1))
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

int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque)
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

/*
 * The range holding all of [addr, addr + size), copied out under the
 * lock (accesses changes under us, and the slot may be reused once the
 * lock is dropped).  Written so that nothing wraps at the top of the
 * address space.
 */
static bool io_bus_find(struct io_bus *bus, uint64_t addr, unsigned int size,
			struct io_range *out)
{
	bool found = false;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->nr; i++) {
		struct io_range *r = &bus->range[i];

		if (addr >= r->base && size <= r->len && addr - r->base <= r->len - size) {
			out->base = r->base;
			out->ops = r->ops;
			out->opaque = r->opaque;
			__atomic_fetch_add(&r->accesses, 1, __ATOMIC_RELAXED);
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return found;
}

static void io_range_rw(const struct io_range *r, uint16_t off, bool is_write,
			uint8_t *data, unsigned int size)
{
	uint32_t val = 0;

	if (is_write) {
		memcpy(&val, data, size);
		if (r->ops->write)
			r->ops->write(r->opaque, off, size, val);
	} else {
		val = r->ops->read ? r->ops->read(r->opaque, off, size) : 0xffffffff;
		memcpy(data, &val, size);
	}
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, bool is_write,
		   void *data, unsigned int size)
{
	struct io_range r = { 0 };
	uint16_t off;

	/*
	 * The device is called without the lock: a PCI config write that
	 * moves a BAR re-registers ranges from inside this call.  Devices
	 * live until the VM is torn down, so the copied ops/opaque stay
	 * valid.
	 */
	if ((size != 1 && size != 2 && size != 4 && size != 8) ||
	    !io_bus_find(bus, addr, size, &r)) {
		__atomic_fetch_add(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, size);
		return false;
	}
	off = addr - r.base;
	if (size < 8) {
		io_range_rw(&r, off, is_write, data, size);
		return true;
	}
	/* Devices take at most a dword: low half first, as a 32-bit CPU would. */
	io_range_rw(&r, off, is_write, data, 4);
	io_range_rw(&r, off + 4, is_write, (uint8_t *)data + 4, 4);
	return true;
}
