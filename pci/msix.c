// SPDX-License-Identifier: MIT
/*
 * MSI-X table, pending bits and delivery (PCI Local Bus 3.0, 6.8.2).
 *
 * The guest reaches the table and the PBA with dword (or qword, split in
 * two dwords by the bus) accesses at dword alignment; anything else reads
 * as all ones and is dropped, as the spec leaves it undefined.  Reserved
 * bits read as zero: the low two address bits and the vector-control bits
 * other than the mask.  The PBA is read-only.
 */
#include <errno.h>
#include <string.h>

#include "lib/util.h"
#include "pci/msix.h"

#define PBA_WORD(v)	((v) / 64)
#define PBA_BIT(v)	(1ULL << ((v) % 64))

int msix_init(struct msix *m, unsigned int nr)
{
	unsigned int i;

	if (nr == 0 || nr > MSIX_MAX_VECTORS)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->nr = nr;
	for (i = 0; i < nr; i++)
		m->table[i].ctrl = MSIX_ENTRY_CTRL_MASK;
	pthread_mutex_init(&m->lock, NULL);
	return 0;
}

void msix_destroy(struct msix *m)
{
	pthread_mutex_destroy(&m->lock);
}

void msix_cap_body(const struct msix *m, unsigned int bar, uint8_t body[MSIX_CAP_BODY_LEN],
		   uint8_t wmask[MSIX_CAP_BODY_LEN])
{
	uint16_t control = m->nr - 1;		/* table size is encoded N-1 */
	uint32_t table = MSIX_TABLE_OFF | bar;	/* offset | BIR */
	uint32_t pba = MSIX_PBA_OFF | bar;
	unsigned int i;

	memset(body, 0, MSIX_CAP_BODY_LEN);
	memset(wmask, 0, MSIX_CAP_BODY_LEN);
	body[0] = control;
	body[1] = control >> 8;
	for (i = 0; i < 4; i++) {
		body[2 + i] = table >> (8 * i);
		body[6 + i] = pba >> (8 * i);
	}
	wmask[1] = (MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL) >> 8;
}

void msix_set_sink(struct msix *m, const struct msix_sink *sink)
{
	pthread_mutex_lock(&m->lock);
	m->sink = *sink;
	pthread_mutex_unlock(&m->lock);
}

static bool msix_bit(const uint64_t *map, unsigned int v)
{
	return map[PBA_WORD(v)] & PBA_BIT(v);
}

static void msix_bit_set(uint64_t *map, unsigned int v, bool on)
{
	if (on)
		map[PBA_WORD(v)] |= PBA_BIT(v);
	else
		map[PBA_WORD(v)] &= ~PBA_BIT(v);
}

/* m->lock held: whether v's message may go out now. */
static bool msix_open_locked(const struct msix *m, unsigned int v)
{
	return m->enabled && !m->masked && !(m->table[v].ctrl & MSIX_ENTRY_CTRL_MASK);
}

/* m->lock held: hand a changed message to the sink before it is used. */
static void msix_route_locked(struct msix *m, unsigned int v)
{
	const struct msix_entry *e = &m->table[v];
	int ret;

	if (!msix_bit(m->dirty, v) || !m->sink.route)
		return;
	ret = m->sink.route(m->sink.opaque, v,
			    (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
	/* Failed: tried again before the next message (the old route stays meanwhile). */
	msix_bit_set(m->dirty, v, ret != 0);
	if (ret && !m->route_warned) {
		m->route_warned = true;
		pr_warn("MSI-X vector %u: message %#x:%08x data %#x cannot be routed: %s",
			v, e->addr_hi, e->addr_lo, e->data, strerror(-ret));
	}
}

/* m->lock held, v open: send it. */
static void msix_fire_locked(struct msix *m, unsigned int v)
{
	msix_route_locked(m, v);
	m->fired++;
	if (m->sink.fire)
		m->sink.fire(m->sink.opaque, v);
}

/* m->lock held: a mask may have been lifted; deliver what waited behind it. */
static void msix_flush_locked(struct msix *m)
{
	unsigned int v;

	for (v = 0; v < m->nr; v++) {
		if (!msix_open_locked(m, v))
			continue;
		/* Routed at unmask even with nothing pending: the next fire is cheap. */
		msix_route_locked(m, v);
		if (msix_bit(m->pba, v)) {
			msix_bit_set(m->pba, v, false);
			msix_fire_locked(m, v);
		}
	}
}

/* m->lock held: drop every pending bit; true if one was set. */
static bool msix_clear_pending_locked(struct msix *m)
{
	bool any = false;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(m->pba); i++) {
		any |= m->pba[i] != 0;
		m->pba[i] = 0;
	}
	return any;
}

bool msix_control_write(struct msix *m, uint16_t control)
{
	bool dropped = false;

	pthread_mutex_lock(&m->lock);
	__atomic_store_n(&m->enabled, !!(control & MSIX_CONTROL_ENABLE), __ATOMIC_RELEASE);
	m->masked = control & MSIX_CONTROL_MASKALL;
	if (m->enabled)
		msix_flush_locked(m);
	else
		dropped = msix_clear_pending_locked(m);
	pthread_mutex_unlock(&m->lock);
	return dropped;
}

void msix_clear_pending(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
	msix_clear_pending_locked(m);
	pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(const struct msix *m)
{
	return __atomic_load_n(&m->enabled, __ATOMIC_ACQUIRE);
}

void msix_lock(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
}

void msix_unlock(struct msix *m)
{
	pthread_mutex_unlock(&m->lock);
}

int msix_notify_locked(struct msix *m, unsigned int v)
{
	if (!m->enabled)
		return -ENODEV;
	if (v >= m->nr)
		return -EINVAL;
	if (msix_open_locked(m, v)) {
		msix_fire_locked(m, v);
		return 1;
	}
	/* Masked: the bit holds it until the mask is lifted. */
	msix_bit_set(m->pba, v, true);
	m->pended++;
	return 0;
}

int msix_notify(struct msix *m, unsigned int v)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = msix_notify_locked(m, v);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

bool msix_pending(struct msix *m, unsigned int v)
{
	bool p;

	if (v >= m->nr)
		return false;
	pthread_mutex_lock(&m->lock);
	p = msix_bit(m->pba, v);
	pthread_mutex_unlock(&m->lock);
	return p;
}

static uint32_t msix_table_read_locked(const struct msix *m, unsigned int off)
{
	const struct msix_entry *e = &m->table[off / MSIX_ENTRY_SIZE];

	switch (off % MSIX_ENTRY_SIZE) {
	case 0:
		return e->addr_lo;
	case 4:
		return e->addr_hi;
	case 8:
		return e->data;
	default:
		return e->ctrl;
	}
}

static uint32_t msix_bar_read(void *opaque, uint16_t off, unsigned int size)
{
	struct msix *m = opaque;
	uint32_t val = UINT32_MAX;
	unsigned int v;

	if (size != 4 || off % 4)
		return UINT32_MAX;
	pthread_mutex_lock(&m->lock);
	if (off < m->nr * MSIX_ENTRY_SIZE) {
		val = msix_table_read_locked(m, off);
	} else if (off >= MSIX_PBA_OFF) {
		v = (off - MSIX_PBA_OFF) * 8;	/* first vector of this dword */
		val = v < MSIX_MAX_VECTORS ? m->pba[PBA_WORD(v)] >> (v % 64) : 0;
	}
	pthread_mutex_unlock(&m->lock);
	return val;
}

/* m->lock held: the guest wrote a dword of entry v. */
static void msix_entry_write_locked(struct msix *m, unsigned int v, unsigned int field,
				    uint32_t val)
{
	struct msix_entry *e = &m->table[v];

	switch (field) {
	case 0:
		e->addr_lo = val & ~3u;		/* dword aligned: low bits reserved */
		break;
	case 4:
		e->addr_hi = val;
		break;
	case 8:
		e->data = val;
		break;
	default:
		e->ctrl = val & MSIX_ENTRY_CTRL_MASK;
		msix_flush_locked(m);
		return;
	}
	msix_bit_set(m->dirty, v, true);
}

static void msix_bar_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct msix *m = opaque;

	/* The PBA and the space after the table are read-only. */
	if (size != 4 || off % 4 || off >= m->nr * MSIX_ENTRY_SIZE)
		return;
	pthread_mutex_lock(&m->lock);
	msix_entry_write_locked(m, off / MSIX_ENTRY_SIZE, off % MSIX_ENTRY_SIZE, val);
	pthread_mutex_unlock(&m->lock);
}

const struct io_ops msix_bar_ops = {
	.read = msix_bar_read,
	.write = msix_bar_write,
};
