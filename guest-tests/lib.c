// SPDX-License-Identifier: MIT
/* Freestanding support library for tinyvmm's test guests (see lib.h). */
#include "lib.h"

#define COM1		0x3f8
#define DEBUG_EXIT	0x501
#define LAPIC_BASE	0xfee00000ULL
#define IOAPIC_BASE	0xfec00000ULL

const char *g_cmdline = "";
uint64_t g_ram_end;

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* ---- console and exit ----------------------------------------------------- */

static void putc_(char c)
{
	outb(COM1, (uint8_t)c);
}

static void putu(uint64_t v, unsigned int base)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		putc_(buf[--n]);
}

/* %s %c %u %x, with an optional l (64-bit). */
void gprintf(const char *fmt, ...)
{
	va_list ap;
	bool l;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc_(*fmt);
			continue;
		}
		fmt++;
		l = *fmt == 'l';
		if (l)
			fmt++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (*s)
				putc_(*s++);
			break;
		}
		case 'c':
			putc_((char)va_arg(ap, int));
			break;
		case 'u':
			putu(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 10);
			break;
		case 'x':
			putu(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 16);
			break;
		default:
			putc_('%');
			putc_(*fmt);
			break;
		}
	}
	va_end(ap);
}

void guest_exit(unsigned int code)
{
	for (;;)
		outl(DEBUG_EXIT, code);
}

void check_fail(const char *file, int line, const char *expr, uint64_t a, uint64_t b)
{
	char name[32];

	gprintf("guest: FAIL case=%s %s:%u: %s", cmdline_get("case", name, sizeof(name)) ?
		name : "?", file, (unsigned int)line, expr);
	if (a != b)
		gprintf(" (0x%lx != 0x%lx)", a, b);
	gprintf("\n");
	guest_exit(EXIT_FAIL);
}

void guest_exception(uint64_t vec, uint64_t w0, uint64_t w1)
{
	gprintf("guest: exception %lu (stack: 0x%lx 0x%lx)\n", vec, w0, w1);
	guest_exit(EXIT_EXCEPTION);
}

/* ---- boot info ------------------------------------------------------------ */

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));

void boot_info(uint64_t pa)
{
	const struct hvm_start_info *si = P(pa);
	const struct hvm_memmap_entry *mm;
	uint32_t i;

	CHECK_EQ(si->magic, 0x336ec578);
	if (si->cmdline_paddr)
		g_cmdline = P(si->cmdline_paddr);
	CHECK(si->version >= 1 && si->memmap_entries > 0);
	mm = P(si->memmap_paddr);
	for (i = 0; i < si->memmap_entries; i++)
		if (mm[i].type == 1 && mm[i].addr + mm[i].size > g_ram_end)
			g_ram_end = mm[i].addr + mm[i].size;
	CHECK(g_ram_end >= 16ULL << 20);
}

const char *cmdline_get(const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key), n;
	const char *p = g_cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, key, kl) && p[kl] == '=') {
			p += kl + 1;
			for (n = 0; p[n] && p[n] != ' ' && n + 1 < len; n++)
				buf[n] = p[n];
			buf[n] = 0;
			return buf;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	char buf[24];
	uint64_t v = 0;
	const char *p = cmdline_get(key, buf, sizeof(buf));

	if (!p || !*p)
		return dflt;
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

/* ---- PCI ------------------------------------------------------------------ */

static void pci_addr(unsigned int slot, unsigned int off)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
}

uint32_t pci_read(unsigned int slot, unsigned int off, unsigned int size)
{
	pci_addr(slot, off);
	if (size == 1)
		return inb(0xcfc + (off & 3));
	if (size == 2)
		return inw(0xcfc + (off & 2));
	return inl(0xcfc);
}

void pci_write(unsigned int slot, unsigned int off, unsigned int size, uint32_t v)
{
	pci_addr(slot, off);
	if (size == 1)
		outb(0xcfc + (off & 3), v);
	else if (size == 2)
		outw(0xcfc + (off & 2), v);
	else
		outl(0xcfc, v);
}

/* ---- virtio --------------------------------------------------------------- */

void vdev_find(struct vdev *d)
{
	uint32_t bar, mask, size;
	uint16_t cmd;
	unsigned int slot;

	memset(d, 0, sizeof(*d));
	for (slot = 0; slot < 32; slot++)
		if (pci_read(slot, 0, 4) == 0x10011af4)
			break;
	CHECK(slot < 32);
	d->slot = slot;
	CHECK_EQ(pci_read(slot, 0x08, 1), 0);			/* revision: legacy ABI 0 */
	CHECK_EQ(pci_read(slot, 0x2c, 4), 0x00021af4);		/* subsystem: virtio type 2 */
	CHECK_EQ(pci_read(slot, 0x3d, 1), 1);			/* INTA# */

	/* Size BAR0 as an OS does: decode off, all ones, read the mask, restore. */
	cmd = pci_read(slot, 0x04, 2);
	CHECK(cmd & 1);						/* I/O decode on */
	bar = pci_read(slot, 0x10, 4);
	CHECK(bar & 1);						/* an I/O BAR */
	pci_write(slot, 0x04, 2, cmd & ~1u);
	pci_write(slot, 0x10, 4, 0xffffffff);
	mask = pci_read(slot, 0x10, 4);
	pci_write(slot, 0x10, 4, bar);
	pci_write(slot, 0x04, 2, cmd);
	CHECK(mask & 1);
	size = (~(mask & ~3u) + 1) & 0xffff;
	CHECK_EQ(size, 128);		/* 20 bytes of registers + 60 of config, rounded up */
	CHECK_EQ(pci_read(slot, 0x10, 4), bar);
	CHECK_EQ(bar & ~3u & (size - 1), 0);
	d->io = bar & 0xfffc;
	d->irq_line = pci_read(slot, 0x3c, 1);
	d->host_features = inl(d->io + VIRTIO_HOST_FEATURES);
	CHECK(d->host_features != 0 && d->host_features != 0xffffffff);
}

void vdev_reset(struct vdev *d)
{
	outb(d->io + VIRTIO_STATUS, 0);
	CHECK_EQ(inb(d->io + VIRTIO_STATUS), 0);
}

uint64_t vdev_capacity(struct vdev *d)
{
	return inl(d->io + VIRTIO_CONFIG) | (uint64_t)inl(d->io + VIRTIO_CONFIG + 4) << 32;
}

static void zero64(uint64_t pa, size_t bytes)
{
	volatile uint64_t *p = P(pa);
	size_t i;

	for (i = 0; i < bytes / 8; i++)
		p[i] = 0;
}

void vdev_init(struct vdev *d, uint32_t want, uint64_t ring_pa)
{
	vdev_reset(d);
	outb(d->io + VIRTIO_STATUS, S_ACK);
	outb(d->io + VIRTIO_STATUS, S_ACK | S_DRIVER);
	outl(d->io + VIRTIO_GUEST_FEATURES, d->host_features & want);
	CHECK_EQ(inl(d->io + VIRTIO_GUEST_FEATURES), d->host_features & want);
	vdev_setup_queue(d, 0, ring_pa);
	outb(d->io + VIRTIO_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
	CHECK_EQ(inb(d->io + VIRTIO_STATUS), S_ACK | S_DRIVER | S_DRIVER_OK);
}

void vdev_setup_queue(struct vdev *d, uint16_t q, uint64_t ring_pa)
{
	uint16_t num;
	uint64_t size;

	outw(d->io + VIRTIO_QUEUE_SEL, q);
	num = inw(d->io + VIRTIO_QUEUE_NUM);
	CHECK(num >= 2 && num <= 1024 && !(num & (num - 1)));
	CHECK_EQ(inl(d->io + VIRTIO_QUEUE_PFN), 0);
	/* Legacy layout: desc[num], avail (4 + 2num + 2), align 4096, used (4 + 8num + 2). */
	size = ((16ULL * num + 6 + 2ULL * num + 4095) & ~4095ULL) + ((6 + 8ULL * num + 4095) & ~4095ULL);
	CHECK(size <= 0x10000);
	zero64(ring_pa, size);
	d->queue = q;
	d->num = num;
	d->ring = ring_pa;
	d->desc = P(ring_pa);
	d->avail = P(ring_pa + 16ULL * num);
	d->used = P((ring_pa + 16ULL * num + 6 + 2ULL * num + 4095) & ~4095ULL);
	d->avail_idx = d->used_idx = 0;
	outl(d->io + VIRTIO_QUEUE_PFN, (uint32_t)(ring_pa >> 12));
	CHECK_EQ(inl(d->io + VIRTIO_QUEUE_PFN), ring_pa >> 12);
}

uint16_t vq_used_idx(struct vdev *d)
{
	return *(volatile uint16_t *)(d->used + 2);
}

void vq_post(struct vdev *d, uint16_t head)
{
	d->avail[2 + (d->avail_idx & (d->num - 1))] = head;
	barrier();	/* x86 keeps stores in order; the compiler must too */
	d->avail[1] = ++d->avail_idx;
	barrier();
}

void vq_kick(struct vdev *d)
{
	outw(d->io + VIRTIO_QUEUE_NOTIFY, d->queue);
}

bool vq_wait(struct vdev *d, uint64_t cycles)
{
	uint64_t t0 = rdtsc();

	while (vq_used_idx(d) == d->used_idx)
		if (rdtsc() - t0 > cycles)
			return false;
	barrier();
	return true;
}

uint32_t vq_complete(struct vdev *d, uint16_t head, int64_t len)
{
	volatile uint32_t *e;
	uint32_t id, ulen;

	if (!vq_wait(d, WAIT_LONG)) {
		gprintf("guest: no completion for head %u (used idx %u)\n", head, vq_used_idx(d));
		CHECK(!"request completed in time");
	}
	e = (volatile uint32_t *)(d->used + 4 + 8 * (d->used_idx & (d->num - 1)));
	id = e[0];
	ulen = e[1];
	d->used_idx++;
	CHECK_EQ(id, head);
	if (len >= 0)
		CHECK_EQ(ulen, len);
	return ulen;
}

void set_desc(volatile struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

uint64_t hdr_at(unsigned int slot, uint32_t type, uint64_t sector)
{
	uint64_t pa = HDR_ADDR + 16ULL * slot;
	volatile uint32_t *h = P(pa);

	h[0] = type;
	h[1] = 0;
	*(volatile uint64_t *)P(pa + 8) = sector;
	return pa;
}

uint8_t blk_req(struct vdev *d, uint32_t type, uint64_t sector, uint64_t buf, uint32_t len)
{
	volatile uint8_t *st = P(STATUS_ADDR);
	bool in = type == T_IN || type == T_GET_ID;
	uint32_t ulen;

	*st = ST_SENTINEL;
	set_desc(d->desc, 0, hdr_at(0, type, sector), 16, D_NEXT, 1);
	if (len) {
		set_desc(d->desc, 1, buf, len, D_NEXT | (in ? D_WRITE : 0), 2);
		set_desc(d->desc, 2, STATUS_ADDR, 1, D_WRITE, 0);
	} else {
		set_desc(d->desc, 1, STATUS_ADDR, 1, D_WRITE, 0);
	}
	vq_post(d, 0);
	vq_kick(d);
	ulen = vq_complete(d, 0, -1);
	CHECK(*st != ST_SENTINEL);
	/* Used length: status byte, plus the data of a successful IN. */
	if (*st == ST_OK && type == T_IN)
		CHECK_EQ(ulen, len + 1);
	else if (type != T_GET_ID)
		CHECK_EQ(ulen, 1);
	return *st;
}

void pat_fill(uint64_t buf, unsigned int nsect, unsigned int seed)
{
	uint8_t *p = P(buf);
	unsigned int k, i;

	for (k = 0; k < nsect; k++)
		for (i = 0; i < 512; i++)
			p[512 * k + i] = (uint8_t)(seed + 7 * k + i);
}

bool pat_ok(uint64_t buf, unsigned int nsect, unsigned int seed)
{
	const uint8_t *p = P(buf);
	unsigned int k, i;

	for (k = 0; k < nsect; k++)
		for (i = 0; i < 512; i++)
			if (p[512 * k + i] != (uint8_t)(seed + 7 * k + i))
				return false;
	return true;
}

void valid_rw(struct vdev *d, uint64_t sector, unsigned int nsect, unsigned int seed)
{
	pat_fill(DATA_ADDR, nsect, seed);
	CHECK_EQ(blk_req(d, T_OUT, sector, DATA_ADDR, 512 * nsect), ST_OK);
	memset(P(DATA2_ADDR), DATA_FILL, 512 * nsect);
	CHECK_EQ(blk_req(d, T_IN, sector, DATA2_ADDR, 512 * nsect), ST_OK);
	CHECK(pat_ok(DATA2_ADDR, nsect, seed));
}

/* ---- interrupts ----------------------------------------------------------- */

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
extern const uint64_t exc_stubs[32];
extern char irq_stub_dev[], irq_stub_dev2[], irq_stub_timer[], irq_stub_spurious[];

static void idt_set(unsigned int v, uint64_t fn)
{
	idt[v] = (struct idt_gate) {
		.off0 = fn, .sel = 0x08, .type = 0x8e, .off1 = fn >> 16, .off2 = fn >> 32,
	};
}

void idt_setup(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) ptr = {
		sizeof(idt) - 1, (uint64_t)(uintptr_t)idt,
	};
	unsigned int v;

	for (v = 0; v < 32; v++)
		idt_set(v, exc_stubs[v]);
	for (v = 32; v < 256; v++)
		idt_set(v, (uint64_t)(uintptr_t)irq_stub_spurious);
	idt_set(VEC_DEV, (uint64_t)(uintptr_t)irq_stub_dev);
	idt_set(VEC_DEV2, (uint64_t)(uintptr_t)irq_stub_dev2);
	idt_set(VEC_TIMER, (uint64_t)(uintptr_t)irq_stub_timer);
	__asm__ __volatile__("lidt %0" :: "m"(ptr));
}

static volatile uint32_t *lapic(unsigned int reg)
{
	return P(LAPIC_BASE + reg);
}

void pic_mask_all(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void lapic_enable(void)
{
	*lapic(0x80) = 0;				/* TPR */
	*lapic(0x350) = 1u << 16;			/* LINT0 masked: no 8259 */
	*lapic(0xf0) = 0x100 | VEC_SPURIOUS;		/* software enable */
}

void lapic_eoi(void)
{
	*lapic(0xb0) = 0;
}

void lapic_timer_oneshot(uint8_t vector, uint32_t count)
{
	*lapic(0x3e0) = 0x3;				/* divide by 16 */
	*lapic(0x320) = vector;				/* one-shot, unmasked */
	*lapic(0x380) = count;
}

void lapic_timer_stop(void)
{
	*lapic(0x320) = 1u << 16;
	*lapic(0x380) = 0;
}

void ioapic_route(unsigned int pin, uint8_t vector, bool level)
{
	volatile uint32_t *sel = P(IOAPIC_BASE), *win = P(IOAPIC_BASE + 0x10);

	/* Fixed delivery, physical destination APIC 0; PCI INTx: level, active low. */
	*sel = 0x11 + 2 * pin;
	*win = 0;
	*sel = 0x10 + 2 * pin;
	*win = vector | (level ? (1u << 15 | 1u << 13) : 0);
}
