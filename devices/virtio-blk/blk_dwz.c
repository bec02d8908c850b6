// SPDX-License-Identifier: MIT
/*
 * DISCARD and WRITE_ZEROES: what is offered (only what the media does
 * itself, and DISCARD not with discard=ignore), and the parse of a
 * request's segments.  Every segment comes from the guest, so each is
 * checked before it becomes a disk operation: the count of segments
 * against max_*_seg, sector + count against the capacity (and so the
 * range= window) without overflow, alignment to the logical block, the
 * flags (reserved bits, and unmap on a DISCARD, are UNSUPP as the spec
 * says), and read-only devices (IOERR, as for OUT).
 */
#include <endian.h>
#include <string.h>

#include "devices/virtio-blk/blk.h"
#include "lib/util.h"

#define BLK_OUTHDR_SIZE		16
#define BLK_DWZ_SEG_SIZE	16	/* struct virtio_blk_discard_write_zeroes */

void blk_dwz_setup(struct blk_dev *b)
{
	const struct disk_props *p = disk_props(b->disk);
	struct blk_config *c = &b->cfg;
	uint32_t align = b->opts.logical_block / BLK_SECTOR_SIZE;
	uint32_t max = BLK_DWZ_MAX_SECTORS / align * align;

	if (!b->media_ro && p->discard && !b->opts.discard_ignore) {
		b->features |= 1ULL << VIRTIO_BLK_F_DISCARD;
		c->max_discard_sectors = htole32(max);
		c->max_discard_seg = htole32(BLK_DWZ_MAX_SEG);
		c->discard_sector_alignment = htole32(align);
	}
	if (!b->media_ro && p->write_zeroes) {
		b->features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
		c->max_write_zeroes_sectors = htole32(max);
		c->max_write_zeroes_seg = htole32(BLK_DWZ_MAX_SEG);
		c->write_zeroes_may_unmap = p->zeroes_unmap && !b->opts.discard_ignore;
	}
}

/* One raw segment into *s: 0, or the status that refuses the request. */
static uint8_t blk_dwz_seg(const struct blk_dev *b, const uint8_t *raw, bool zeroes,
			   struct blk_seg *s)
{
	uint64_t lb_sectors = b->opts.logical_block / BLK_SECTOR_SIZE, end;
	uint32_t count, flags;

	memcpy(&s->sector, raw, 8);
	memcpy(&count, raw + 8, 4);
	memcpy(&flags, raw + 12, 4);
	s->sector = le64toh(s->sector);
	s->count = count = le32toh(count);
	flags = le32toh(flags);
	if ((flags & ~VIRTIO_BLK_DWZ_F_UNMAP) || (!zeroes && (flags & VIRTIO_BLK_DWZ_F_UNMAP)))
		return VIRTIO_BLK_S_UNSUPP;
	s->unmap = flags & VIRTIO_BLK_DWZ_F_UNMAP;
	if (!count || count > BLK_DWZ_MAX_SECTORS || s->sector % lb_sectors ||
	    count % lb_sectors)
		return VIRTIO_BLK_S_IOERR;
	end = s->sector + count;
	if (end < s->sector || end > blk_capacity(b))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/*
 * A DISCARD or WRITE_ZEROES popped in e (header checked, type known):
 * r becomes BLK_REQ_DISCARD/WRITE_ZEROES with its segments, or
 * BLK_REQ_DONE with the status that refuses it.
 */
void blk_dwz_parse(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r, uint32_t type)
{
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	unsigned int feature = zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD;
	uint8_t raw[BLK_DWZ_MAX_SEG * BLK_DWZ_SEG_SIZE], st;
	uint64_t len = 0;
	unsigned int i;

	r->kind = BLK_REQ_DONE;
	/* An RO device changes nothing, whatever the driver ignored. */
	if (b->media_ro) {
		r->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	/* Offered and accepted: a driver that did not ack it gets what it would have. */
	if (!(b->features & (1ULL << feature)) || !virtio_pci_has_feature(&b->vp, feature)) {
		r->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
	/* The segments follow the header, in its descriptor or the next ones. */
	len = e->iov[0].iov_len - BLK_OUTHDR_SIZE;
	for (i = 1; i < e->nr_out; i++)
		len += e->iov[i].iov_len;
	r->status = VIRTIO_BLK_S_IOERR;
	if (!len || len % BLK_DWZ_SEG_SIZE || len > sizeof(raw))
		return;
	/* Copied once: the guest may change the buffer under us. */
	e->iov[0].iov_base = (uint8_t *)e->iov[0].iov_base + BLK_OUTHDR_SIZE;
	e->iov[0].iov_len -= BLK_OUTHDR_SIZE;
	iov_to_buf(e->iov, e->nr_out, 0, raw, len);
	r->nseg = len / BLK_DWZ_SEG_SIZE;
	for (i = 0; i < r->nseg; i++) {
		st = blk_dwz_seg(b, raw + i * BLK_DWZ_SEG_SIZE, zeroes, &r->seg[i]);
		if (st != VIRTIO_BLK_S_OK) {
			r->status = st;
			return;
		}
		r->seg[i].unmap &= !b->opts.discard_ignore;
	}
	r->kind = zeroes ? BLK_REQ_WRITE_ZEROES : BLK_REQ_DISCARD;
	r->cur = 0;
	/* Zeroes are data: durable before completion in writethru, as a write. */
	r->sync = zeroes && !__atomic_load_n(&b->cfg.wce, __ATOMIC_RELAXED);
}
