/* SPDX-License-Identifier: MIT */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H
/*
 * Freestanding helpers for tinyvmm's test guests: port I/O, COM1, the
 * debug-exit port, PCI config mechanism #1, a small legacy virtio-blk
 * driver (polled), and the LAPIC/IOAPIC/IDT bits for interrupt tests.
 * Physical = virtual (identity map of 4 GiB).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses (tinyvmm exits with the value written to port 0x501). */
#define EXIT_PASS	0x50
#define EXIT_FAIL	0x61
#define EXIT_EXCEPTION	0x62
#define EXIT_NOCASE	0x63

/* Guest-physical work areas (the image sits at 1 MiB and is small). */
#define RING0_ADDR	0x400000ULL	/* virtqueue rings, 64 KiB apart */
#define RING1_ADDR	0x410000ULL
#define HDR_ADDR	0x500000ULL	/* request headers, 16 bytes each */
#define STATUS_ADDR	0x508000ULL	/* status bytes */
#define DATA_ADDR	0x600000ULL	/* data buffers */
#define DATA2_ADDR	0x680000ULL
#define TABLE_ADDR	0x700000ULL	/* indirect descriptor tables */

#define barrier()	__asm__ __volatile__("" ::: "memory")

static inline void outb(uint16_t p, uint8_t v) { __asm__ __volatile__("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ __volatile__("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ __volatile__("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void *P(uint64_t pa) { return (void *)(uintptr_t)pa; }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

void gprintf(const char *fmt, ...);
__attribute__((noreturn)) void guest_exit(unsigned int code);
__attribute__((noreturn)) void check_fail(const char *file, int line, const char *expr, uint64_t a, uint64_t b);

#define CHECK(c) do { if (!(c)) check_fail(__FILE__, __LINE__, #c, 0, 0); } while (0)
#define CHECK_EQ(a, b) do { uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b); \
	if (a_ != b_) check_fail(__FILE__, __LINE__, #a " == " #b, a_, b_); } while (0)

/* Time-outs in TSC cycles: generous, only reached on failure. */
#define WAIT_LONG	20000000000ULL	/* ~ 5-10 s */
#define WAIT_SHORT	300000000ULL	/* ~ 0.1 s */

/* Boot info. */
extern const char *g_cmdline;
extern uint64_t g_ram_end;	/* end of the highest RAM range */
void boot_info(uint64_t start_info);
/* Value of "key=" in the cmdline (copied, NUL-terminated) or NULL. */
const char *cmdline_get(const char *key, char *buf, size_t len);
uint64_t cmdline_u64(const char *key, uint64_t dflt);

/* PCI. */
uint32_t pci_read(unsigned int slot, unsigned int off, unsigned int size);
void pci_write(unsigned int slot, unsigned int off, unsigned int size, uint32_t v);

/* Legacy virtio. */
#define VIRTIO_HOST_FEATURES	0
#define VIRTIO_GUEST_FEATURES	4
#define VIRTIO_QUEUE_PFN	8
#define VIRTIO_QUEUE_NUM	12
#define VIRTIO_QUEUE_SEL	14
#define VIRTIO_QUEUE_NOTIFY	16
#define VIRTIO_STATUS		18
#define VIRTIO_ISR		19
#define VIRTIO_CONFIG		20

#define S_ACK		1
#define S_DRIVER	2
#define S_DRIVER_OK	4
#define S_NEEDS_RESET	0x40

#define F_SEG_MAX	(1u << 2)
#define F_RO		(1u << 5)
#define F_BLK_SIZE	(1u << 6)
#define F_FLUSH		(1u << 9)
#define F_TOPOLOGY	(1u << 10)
#define F_CONFIG_WCE	(1u << 11)
#define F_MQ		(1u << 12)
#define F_DISCARD	(1u << 13)
#define F_WRITE_ZEROES	(1u << 14)
#define F_INDIRECT	(1u << 28)
#define F_EVENT_IDX	(1u << 29)

#define D_NEXT		1
#define D_WRITE		2
#define D_INDIRECT	4

#define T_IN		0
#define T_OUT		1
#define T_FLUSH		4
#define T_FLUSH_OUT	5
#define T_GET_ID	8
#define T_DISCARD	11
#define T_WRITE_ZEROES	13
#define DWZ_F_UNMAP	1
#define ST_OK		0
#define ST_IOERR	1
#define ST_UNSUPP	2
#define ST_SENTINEL	0xee	/* pre-filled status: "device wrote nothing" */
#define DATA_FILL	0xcc	/* pre-filled read buffers */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdev {
	unsigned int slot;
	uint16_t io;
	uint8_t irq_line;
	uint32_t host_features;
	uint16_t queue;			/* the queue this ring is */
	uint16_t num;
	uint64_t ring;
	volatile struct vring_desc *desc;
	volatile uint16_t *avail;	/* [0] flags, [1] idx, [2 + i] ring */
	volatile uint8_t *used;		/* flags @0, idx @2, ring @4 (8 bytes each) */
	uint16_t avail_idx;		/* next avail idx we publish */
	uint16_t used_idx;		/* next used entry we consume */
};

/* Enumerate bus 0 for 1AF4:1001, check identity, size BAR0; returns slot. */
void vdev_find(struct vdev *d);
/* Reset, ACK, DRIVER, features & want, ring at ring_pa, DRIVER_OK. */
void vdev_init(struct vdev *d, uint32_t want, uint64_t ring_pa);
/* Queue q (its size checked, its PFN 0) zeroed and set up at ring_pa, as d. */
void vdev_setup_queue(struct vdev *d, uint16_t q, uint64_t ring_pa);
void vdev_reset(struct vdev *d);
uint64_t vdev_capacity(struct vdev *d);
uint16_t vq_used_idx(struct vdev *d);
void vq_post(struct vdev *d, uint16_t head);	/* publish, no kick */
void vq_kick(struct vdev *d);
bool vq_wait(struct vdev *d, uint64_t cycles);	/* a used entry is there */
/* Wait for the next used entry and check its id and len (len < 0: any). */
uint32_t vq_complete(struct vdev *d, uint16_t head, int64_t len);

/* Standard request on descriptors 0..2 (2 only when len is 0). */
uint8_t blk_req(struct vdev *d, uint32_t type, uint64_t sector, uint64_t buf, uint32_t len);
/* Header at HDR_ADDR + 16 * slot. */
uint64_t hdr_at(unsigned int slot, uint32_t type, uint64_t sector);
void set_desc(volatile struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next);

/* Data pattern: byte i of sector k of a request with seed s = s + 7k + i. */
void pat_fill(uint64_t buf, unsigned int nsect, unsigned int seed);
bool pat_ok(uint64_t buf, unsigned int nsect, unsigned int seed);
/* Write nsect pattern sectors at sector, read them back and compare. */
void valid_rw(struct vdev *d, uint64_t sector, unsigned int nsect, unsigned int seed);

/* Interrupts. */
void idt_setup(void);
void lapic_enable(void);
void ioapic_route(unsigned int pin, uint8_t vector, bool level);
void lapic_eoi(void);
void lapic_timer_oneshot(uint8_t vector, uint32_t count);
void lapic_timer_stop(void);
void pic_mask_all(void);
#define VEC_DEV		0x40
#define VEC_TIMER	0x41
#define VEC_DEV2	0x42	/* a second device vector (MSI-X) */
#define VEC_SPURIOUS	0xff
void irq_dev(void);
void irq_dev2(void);
void irq_timer(void);
#endif
