// SPDX-License-Identifier: MIT
/*
 * The option string of one virtio-blk device: "PATH[,opt...]".
 * Every rejection prints one line that names the option as the user
 * wrote it, so that a long command line points at its own mistake.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio-blk/blk_opts.h"
#include "disk/disk.h"
#include "lib/util.h"

#define BLK_MIN_LOGICAL		512
#define BLK_MAX_LOGICAL		4096
/* physical_block_exp is a byte, but nothing real is past 64 KiB */
#define BLK_MAX_PHYSICAL	65536
#define BLK_MIN_QSIZE		2

/* Which valued options were seen: each may appear once. */
enum {
	SEEN_SECTORSIZE = 1 << 0,
	SEEN_RANGE = 1 << 1,
	SEEN_QSIZE = 1 << 2,
	SEEN_SERIAL = 1 << 3,
	SEEN_AIO = 1 << 4,
	SEEN_POLL = 1 << 5,
	SEEN_DISCARD = 1 << 6,
	SEEN_RECONNECT = 1 << 7,
	SEEN_TIMEOUT = 1 << 8,
	SEEN_MSIX = 1 << 9,
	SEEN_MQ = 1 << 10,
};

/*
 * Strict decimal: parse_u64() also takes 0x.., and "range=010/8"
 * meaning octal 8 would be a nasty surprise for an LBA.
 */
static int opts_parse_dec(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int digit = (unsigned char)s[i] - '0';

		if (digit > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

/* "A/B" or, when b may be absent, "A"; returns how many numbers were read. */
static int opts_parse_pair(const char *val, uint64_t *a, uint64_t *b)
{
	const char *slash = strchr(val, '/');

	if (!slash)
		return opts_parse_dec(val, strlen(val), a) ? -EINVAL : 1;
	if (opts_parse_dec(val, slash - val, a) ||
	    opts_parse_dec(slash + 1, strlen(slash + 1), b))
		return -EINVAL;
	return 2;
}

static int opts_sectorsize(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t l, p;
	int n = opts_parse_pair(val, &l, &p);

	if (n < 0) {
		pr_err("virtio-blk: %s: expected sectorsize=LOGICAL or LOGICAL/PHYSICAL", opt);
		return -EINVAL;
	}
	if (!IS_POW2(l) || l < BLK_MIN_LOGICAL || l > BLK_MAX_LOGICAL) {
		pr_err("virtio-blk: %s: not a power of two between %u and %u",
		       opt, BLK_MIN_LOGICAL, BLK_MAX_LOGICAL);
		return -EINVAL;
	}
	if (n == 1)
		p = l;
	if (!IS_POW2(p) || p < l || p > BLK_MAX_PHYSICAL) {
		pr_err("virtio-blk: %s: physical size not a power of two between %u and %u",
		       opt, (unsigned int)l, BLK_MAX_PHYSICAL);
		return -EINVAL;
	}
	o->logical_block = l;
	o->physical_block = p;
	return 0;
}

static int opts_range(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t lba, size;

	if (opts_parse_pair(val, &lba, &size) != 2) {
		pr_err("virtio-blk: %s: expected range=LBA/SIZE (decimal, logical sectors)", opt);
		return -EINVAL;
	}
	if (size == 0) {
		pr_err("virtio-blk: %s: SIZE must be at least one sector", opt);
		return -EINVAL;
	}
	/* The byte bounds depend on sectorsize, checked once all options are in. */
	o->has_range = true;
	o->range_lba = lba;
	o->range_sectors = size;
	return 0;
}

static int opts_qsize(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t n;

	if (opts_parse_dec(val, strlen(val), &n) || !IS_POW2(n) ||
	    n < BLK_MIN_QSIZE || n > BLK_MAX_QSIZE) {
		pr_err("virtio-blk: %s: not a power of two between %u and %u",
		       opt, BLK_MIN_QSIZE, BLK_MAX_QSIZE);
		return -EINVAL;
	}
	o->queue_size = n;
	return 0;
}

static int opts_serial(struct blk_opts *o, const char *opt, const char *val)
{
	size_t len = strlen(val), i;

	if (len == 0 || len > BLK_ID_BYTES) {
		pr_err("virtio-blk: %s: must be 1 to %u characters", opt, BLK_ID_BYTES);
		return -EINVAL;
	}
	/* It ends up in /dev/disk/by-id and in udev rules. */
	for (i = 0; i < len; i++) {
		unsigned char c = val[i];

		if (c < 0x20 || c > 0x7e) {
			pr_err("virtio-blk: %s: not printable ASCII", opt);
			return -EINVAL;
		}
	}
	memset(o->serial, 0, sizeof(o->serial));
	memcpy(o->serial, val, len);
	o->has_serial = true;
	return 0;
}

static int opts_aio(struct blk_opts *o, const char *opt, const char *val)
{
	if (!strcmp(val, "threads")) {
		o->aio = BLK_AIO_THREADS;
		return 0;
	}
	if (!strcmp(val, "io_uring")) {
		o->aio = BLK_AIO_IO_URING;
		return 0;
	}
	pr_err("virtio-blk: %s: expected aio=threads or aio=io_uring", opt);
	return -EINVAL;
}

/* val as a decimal in [min, max], else one error line naming opt and the unit. */
static int opts_ranged(const char *opt, const char *val, uint64_t min, uint64_t max,
		       const char *unit, uint64_t *out)
{
	if (opts_parse_dec(val, strlen(val), out) || *out < min || *out > max) {
		pr_err("virtio-blk: %s: expected %s from %llu to %llu", opt, unit,
		       (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	return 0;
}

/* name=a or name=b: *is_b says which; else one error line naming opt. */
static int opts_either(const char *opt, const char *val, const char *name, const char *a,
		       const char *b, bool *is_b)
{
	if (!strcmp(val, a) || !strcmp(val, b)) {
		*is_b = !strcmp(val, b);
		return 0;
	}
	pr_err("virtio-blk: %s: expected %s=%s or %s=%s", opt, name, a, name, b);
	return -EINVAL;
}

static int opts_poll(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t n;

	if (opts_ranged(opt, val, 0, BLK_MAX_POLL_US, "microseconds", &n))
		return -EINVAL;
	o->poll_us = n;
	o->has_poll = true;
	return 0;
}

static int opts_discard(struct blk_opts *o, const char *opt, const char *val)
{
	return opts_either(opt, val, "discard", "unmap", "ignore", &o->discard_ignore);
}

static int opts_reconnect(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t n;

	if (opts_ranged(opt, val, BLK_MIN_RECONNECT_MS, BLK_MAX_RECONNECT_MS, "milliseconds", &n))
		return -EINVAL;
	o->reconnect_ms = n;
	return 0;
}

static int opts_timeout(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t n;

	if (opts_ranged(opt, val, BLK_MIN_TIMEOUT_S, BLK_MAX_TIMEOUT_S, "seconds", &n))
		return -EINVAL;
	o->timeout_s = n;
	return 0;
}

static int opts_msix(struct blk_opts *o, const char *opt, const char *val)
{
	return opts_either(opt, val, "msix", "on", "off", &o->no_msix);
}

static int opts_mq(struct blk_opts *o, const char *opt, const char *val)
{
	uint64_t n;

	if (opts_ranged(opt, val, 1, BLK_MAX_QUEUES, "queues", &n))
		return -EINVAL;
	o->mq = n;
	return 0;
}

static const struct {
	const char *name;
	unsigned int seen;
	int (*parse)(struct blk_opts *o, const char *opt, const char *val);
} valued_opts[] = {
	{ "sectorsize", SEEN_SECTORSIZE, opts_sectorsize },
	{ "range", SEEN_RANGE, opts_range },
	{ "qsize", SEEN_QSIZE, opts_qsize },
	{ "serial", SEEN_SERIAL, opts_serial },
	{ "aio", SEEN_AIO, opts_aio },
	{ "poll", SEEN_POLL, opts_poll },
	{ "discard", SEEN_DISCARD, opts_discard },
	{ "reconnect-delay", SEEN_RECONNECT, opts_reconnect },
	{ "timeout", SEEN_TIMEOUT, opts_timeout },
	{ "msix", SEEN_MSIX, opts_msix },
	{ "mq", SEEN_MQ, opts_mq },
};

static int opts_one(struct blk_opts *o, char *opt, unsigned int *seen)
{
	char *eq = strchr(opt, '=');
	size_t i;

	if (!strcmp(opt, "writethru")) {
		o->writeback = false;
		return 0;
	}
	if (!strcmp(opt, "writeback")) {
		o->writeback = true;
		return 0;
	}
	if (!strcmp(opt, "ro")) {
		o->ro = true;
		return 0;
	}
	if (!strcmp(opt, "direct")) {
		o->direct = true;
		return 0;
	}
	for (i = 0; eq && i < ARRAY_SIZE(valued_opts); i++) {
		size_t n = strlen(valued_opts[i].name);

		if ((size_t)(eq - opt) != n || strncmp(opt, valued_opts[i].name, n))
			continue;
		if (*seen & valued_opts[i].seen) {
			pr_err("virtio-blk: %s: %s= given twice", opt, valued_opts[i].name);
			return -EINVAL;
		}
		*seen |= valued_opts[i].seen;
		return valued_opts[i].parse(o, opt, eq + 1);
	}
	pr_err("virtio-blk: unknown option '%s'", opt);
	return -EINVAL;
}

/* range= and sectorsize= may come in either order: check the bytes last. */
static int opts_check_range(const struct blk_opts *o)
{
	uint64_t end = o->range_lba + o->range_sectors;

	if (!o->has_range)
		return 0;
	/* Byte offsets become off_t, so stay below 2^63. */
	if (end < o->range_lba || end > (uint64_t)INT64_MAX / o->logical_block) {
		pr_err("virtio-blk: range=%llu/%llu: window does not fit in a 63-bit byte offset with sectorsize %u",
		       (unsigned long long)o->range_lba, (unsigned long long)o->range_sectors,
		       o->logical_block);
		return -EINVAL;
	}
	return 0;
}

/*
 * An NBD export has no host file: direct and aio= (the file engines) mean
 * nothing there, and reconnect-delay= and timeout= mean nothing anywhere
 * else.
 */
static int opts_check_nbd(const struct blk_opts *o)
{
	static const char *const aio[] = { "", "threads", "io_uring" };

	if (!disk_path_is_nbd(o->path)) {
		if (o->reconnect_ms)
			pr_err("virtio-blk: reconnect-delay=%u: only for an NBD export (nbd://, nbd+unix://)",
			       o->reconnect_ms);
		else if (o->timeout_s)
			pr_err("virtio-blk: timeout=%u: only for an NBD export (nbd://, nbd+unix://)",
			       o->timeout_s);
		return o->reconnect_ms || o->timeout_s ? -EINVAL : 0;
	}
	if (o->direct) {
		pr_err("virtio-blk: direct: not for an NBD export (the server decides how it caches)");
		return -EINVAL;
	}
	if (o->aio != BLK_AIO_DEFAULT) {
		pr_err("virtio-blk: aio=%s: not for an NBD export (it has an engine of its own)",
		       aio[o->aio]);
		return -EINVAL;
	}
	return 0;
}

int blk_opts_parse(const char *args, struct blk_opts *o)
{
	unsigned int seen = 0;
	char *copy, *opt, *next;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	o->logical_block = BLK_MIN_LOGICAL;
	o->physical_block = BLK_MIN_LOGICAL;
	o->queue_size = BLK_DEFAULT_QSIZE;
	o->poll_us = BLK_DEFAULT_POLL_US;

	if (!args || !*args || *args == ',') {
		pr_err("virtio-blk: missing image path");
		return -EINVAL;
	}
	copy = strdup(args);
	if (!copy)
		return -ENOMEM;

	next = strchr(copy, ',');
	if (next)
		*next++ = 0;
	o->path = strdup(copy);
	if (!o->path) {
		ret = -ENOMEM;
		goto out;
	}
	while (next) {
		opt = next;
		next = strchr(opt, ',');
		if (next)
			*next++ = 0;
		if (!*opt) {
			pr_err("virtio-blk: empty option in '%s'", args);
			ret = -EINVAL;
			goto out;
		}
		ret = opts_one(o, opt, &seen);
		if (ret)
			goto out;
	}
	ret = opts_check_range(o);
	if (!ret)
		ret = opts_check_nbd(o);
out:
	free(copy);
	if (ret)
		blk_opts_free(o);
	return ret;
}

void blk_opts_free(struct blk_opts *o)
{
	free(o->path);
	o->path = NULL;
}
