// SPDX-License-Identifier: MIT
/*
 * blkbench: drive the real virtio-blk device model (devices/virtio-blk)
 * from the host, as Linux's legacy virtio_pci + virtio_blk drivers do,
 * without a VM or /dev/kvm.
 *
 *  - guest RAM is a guest_mem from gmem_init(); rings, request headers,
 *    indirect tables, status bytes and data buffers all live in it;
 *  - the device is blk_dev_create(&b, "PATH,opts", &mem), wired like
 *    vmm/ does it: virtio_pci_set_notify() with an ops table whose attach
 *    just succeeds (so vp.kick_efd[0] is the eventfd KVM's ioeventfd would
 *    signal), and a virtio_irq whose assert_line writes an eventfd (what
 *    an irqfd would consume), then blk_dev_start();
 *  - the driver is the tests' (tests/driver/vdriver.h): the probe goes
 *    through virtio_pci_bar_ops like virtio_pci_legacy.c: reset, ACK,
 *    DRIVER, features, config, QUEUE_SEL/NUM/PFN, DRIVER_OK;
 *  - each request is header (readable), data, status (writable), through
 *    one indirect descriptor when INDIRECT_DESC was negotiated (Linux
 *    uses indirect for every request with more than one segment then);
 *  - a batch of requests is published with one avail->idx update and one
 *    kick (blk-mq's bd->last), made only if the device asks for it
 *    (avail_event with EVENT_IDX, else VRING_USED_F_NO_NOTIFY);
 *    completions are reaped as vp_interrupt() does: wait for the irq
 *    eventfd, read ISR (read-to-clear), walk the used ring; with
 *    EVENT_IDX as virtblk_done() does it (callbacks off while reaping,
 *    then back on with used_event at the next entry, and reap again if
 *    more came meanwhile);
 *  - waiting for the interrupt models a halted vCPU: KVM polls for a
 *    pending interrupt before it puts the vCPU thread to sleep, for a
 *    per-vCPU window that starts at 10 us, doubles after each halt that
 *    ended within the maximum (halt_poll_ns, 200 us by default on x86)
 *    and halves after each longer one (virt/kvm/kvm_main.c,
 *    Documentation/virt/kvm/halt-polling.rst).  blkbench does the same,
 *    up to --halt-poll-us (default 200), watching the flag its interrupt
 *    sink sets before it writes the irq eventfd (KVM's pending interrupt);
 *    --halt-poll-us 0 always sleeps in poll();
 *  - --poll-driver drives a poll queue instead (Linux's
 *    virtio_blk.poll_queues= with io_uring IOPOLL): callbacks off from
 *    the start, completions found by spinning on the used ring, no
 *    interrupt, no ISR read.
 *
 * Prints one summary line:
 *   blkbench: rw=.. bs=.. qd=.. ios=N secs=S iops=X mbps=Y p50_us=.. p99_us=..
 *             cpu_pct=.. kicks=.. irqs=.. device_kicks=.. device_irqs=..
 * mbps is MB/s (10^6 bytes), as fio's "bw" in MB/s.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "devices/virtio/virtio_pci.h"
#include "devices/virtio/virtq.h"
#include "lib/guest_mem.h"
#include "lib/util.h"
#include "tests/driver/vdriver.h"

/* Guest physical layout inside RAM_SIZE bytes. */
#define RAM_SIZE	(80ULL << 20)
#define RING_GPA	0x10000ULL		/* up to 0x30000 for qsize 1024 */
#define HDR_GPA		0x40000ULL		/* 16 bytes per slot */
#define STATUS_GPA	0x48000ULL		/* 1 byte per slot (Linux: in the request) */
#define INDIR_GPA	0x50000ULL		/* INDIR_STRIDE per slot */
#define INDIR_STRIDE	1024ULL			/* 64 descriptors */
#define DATA_GPA	(1ULL << 20)
#define MAX_QD		256
#define MAX_SEGS	(INDIR_STRIDE / 16 - 2)

/*
 * What Linux's virtio_blk (+ the ring core) would ack of a legacy offer,
 * EVENT_IDX included (--no-event-idx leaves it out: kicks and interrupts
 * then follow the flags).
 */
#define DRIVER_FEATURES ((1u << VIRTIO_BLK_F_SIZE_MAX) | (1u << VIRTIO_BLK_F_SEG_MAX) | \
			 (1u << 4) /* GEOMETRY */ | (1u << VIRTIO_BLK_F_RO) | \
			 (1u << VIRTIO_BLK_F_BLK_SIZE) | (1u << VIRTIO_BLK_F_FLUSH) | \
			 (1u << VIRTIO_BLK_F_TOPOLOGY) | (1u << VIRTIO_BLK_F_CONFIG_WCE) | \
			 (1u << 12) /* MQ */ | (1u << 13) /* DISCARD */ | \
			 (1u << 14) /* WRITE_ZEROES */ | (1u << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1u << 29) /* EVENT_IDX */)

enum rw { RW_RANDREAD, RW_RANDWRITE, RW_READ, RW_WRITE };

struct slot {
	bool busy;
	uint64_t t_submit;
};

struct bench {
	struct guest_mem mem;
	struct blk_dev *b;
	struct virtio_pci *vp;
	int irq_efd;
	uint64_t halt_poll_ns;		/* the maximum (KVM's halt_poll_ns) */
	uint64_t vcpu_poll_ns;		/* the adaptive window now */
	bool irq_pending;		/* KVM's view: an interrupt to take */
	bool poll_driver;		/* --poll-driver: reap by polling, interrupts off */
	uint64_t device_irqs;		/* interrupts the device sent */

	/* driver side of the ring: a batch is published by its kick */
	struct vdrv drv;
	bool indirect;
	unsigned int descs_per_req;	/* in the ring, without indirect */

	/* workload */
	enum rw rw;
	uint32_t bs;
	unsigned int qd, segs;
	uint64_t capacity;		/* bytes */
	uint64_t next_off, rng;
	struct slot slot[MAX_QD];
	unsigned int free_slots[MAX_QD], nr_free;

	/* results */
	uint64_t *lat;
	size_t nr_lat, cap_lat;
	uint64_t ios, kicks, irqs, spurious, errors;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "blkbench: %s\n", what);
	exit(1);
}

/* ---- the interrupt and notify sinks, as vmm/virtio_kvm.c wires them ---- */

static void irq_assert(void *opaque)
{
	struct bench *bn = opaque;
	uint64_t one = 1;

	/*
	 * What irqfd_assert does: the irqfd's eventfd, whose wake-up makes
	 * the interrupt pending in KVM's (memory) view of the vCPU; that is
	 * what a halt-polling vCPU looks at, so it is set first.
	 */
	__atomic_store_n(&bn->irq_pending, true, __ATOMIC_RELEASE);
	__atomic_add_fetch(&bn->device_irqs, 1, __ATOMIC_RELAXED);
	if (write(bn->irq_efd, &one, sizeof(one)) < 0)
		perror("blkbench: irq eventfd");
}

static int notify_attach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return 0;	/* KVM_IOEVENTFD would bind efd to the port here */
}

static int notify_detach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return 0;
}

/* ---- the probe, as virtio_pci_legacy.c + virtblk_probe() do it ------------ */

static void driver_probe(struct bench *bn, bool want_indirect, bool want_event_idx)
{
	struct vdrv *d = &bn->drv;
	uint32_t mask = DRIVER_FEATURES;
	uint64_t cap;
	uint32_t seg_max;
	uint8_t wce;

	if (!want_indirect)
		mask &= ~(1u << VIRTIO_RING_F_INDIRECT_DESC);
	if (!want_event_idx)
		mask &= ~(1u << VIRTIO_RING_F_EVENT_IDX);
	/* The irq eventfd is waited on here (wait_irq), not by the library. */
	vdrv_begin(d, bn->vp, &bn->mem, mask, -1, false);
	bn->indirect = d->features & (1u << VIRTIO_RING_F_INDIRECT_DESC);

	/* virtblk_probe: capacity, seg_max, wce from config space. */
	vdrv_cfg_get(d, offsetof(struct blk_config, capacity), &cap, sizeof(cap));
	vdrv_cfg_get(d, offsetof(struct blk_config, seg_max), &seg_max, sizeof(seg_max));
	vdrv_cfg_get(d, offsetof(struct blk_config, wce), &wce, sizeof(wce));
	bn->capacity = cap * BLK_SECTOR_SIZE;
	if ((d->features & (1u << VIRTIO_BLK_F_SEG_MAX)) && bn->segs > seg_max)
		die("--segs is above the device's seg_max");
	if (bn->capacity < bn->bs)
		die("disk smaller than one block");

	/* setup_vq (legacy): select, size, PFN must be 0, zeroed ring, PFN; kicks by eventfd. */
	if (vdrv_setup_queue(d, 0, RING_GPA, false) || d->kick_fd < 0)
		die("queue 0 not available, or the device refused the ring");
	if (RING_GPA + vdrv_ring_size(d->num) > HDR_GPA)
		die("queue too large for the layout");
	vdrv_driver_ok(d);
	d->hold_avail = true;
	if (bn->poll_driver)
		vdrv_disable_cb(d);

	bn->descs_per_req = bn->indirect ? 1 : 2 + bn->segs;
	if ((uint64_t)bn->qd * bn->descs_per_req > d->num)
		die("queue depth does not fit the queue (raise qsize=)");
	fprintf(stderr, "blkbench: features %#x (indirect %s, event_idx %s), qsize %u, capacity %llu MiB, wce %u\n",
		d->features, bn->indirect ? "yes" : "no", d->event_idx ? "yes" : "no", d->num,
		(unsigned long long)(bn->capacity >> 20), wce);
}

/* ---- requests ------------------------------------------------------------ */

static uint64_t next_offset(struct bench *bn)
{
	uint64_t nblocks = bn->capacity / bn->bs, off;

	if (bn->rw == RW_RANDREAD || bn->rw == RW_RANDWRITE) {
		/* xorshift64* */
		bn->rng ^= bn->rng >> 12;
		bn->rng ^= bn->rng << 25;
		bn->rng ^= bn->rng >> 27;
		return ((bn->rng * 0x2545F4914F6CDD1DULL) >> 11) % nblocks * bn->bs;
	}
	off = bn->next_off;
	bn->next_off += bn->bs;
	if (bn->next_off + bn->bs > nblocks * bn->bs)
		bn->next_off = 0;
	return off;
}

/* virtqueue_add_split() for one request in slot i (not yet published). */
static void add_request(struct bench *bn, unsigned int i)
{
	bool write = bn->rw == RW_RANDWRITE || bn->rw == RW_WRITE;
	const struct vdrv_blk_req r = {
		.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
		.sector = next_offset(bn) / BLK_SECTOR_SIZE,
		.hdr_gpa = HDR_GPA + 16ULL * i, .status_gpa = STATUS_GPA + i,
		.data_gpa = DATA_GPA + (uint64_t)i * bn->bs, .data_len = bn->bs, .nseg = bn->segs,
		.table_gpa = bn->indirect ? INDIR_GPA + INDIR_STRIDE * i : 0,
	};

	if (vdrv_blk_add(&bn->drv, bn->indirect ? i : i * bn->descs_per_req, &r))
		die("request does not fit its slot");
}

/* virtqueue_kick: publish the batch, full barrier, kick if the device asks. */
static void kick(struct bench *bn)
{
	int ret = vdrv_kick(&bn->drv);

	if (ret < 0)
		fprintf(stderr, "blkbench: kick eventfd: %s\n", strerror(-ret));
	else
		bn->kicks += ret;
}

static void record_latency(struct bench *bn, uint64_t ns)
{
	if (bn->nr_lat == bn->cap_lat) {
		bn->cap_lat = bn->cap_lat ? bn->cap_lat * 2 : 1 << 16;
		bn->lat = realloc(bn->lat, bn->cap_lat * sizeof(*bn->lat));
		if (!bn->lat)
			die("out of memory");
	}
	bn->lat[bn->nr_lat++] = ns;
}

/* vring_interrupt -> virtblk_done: every used entry since last time. */
static unsigned int reap_used(struct bench *bn)
{
	unsigned int n = 0, i;
	uint32_t id;
	uint64_t t = now_ns();
	uint8_t st;

	while (vdrv_get_used(&bn->drv, &id, NULL)) {
		i = id / bn->descs_per_req;
		if (i >= bn->qd || !bn->slot[i].busy)
			die("device completed an unknown request");
		st = *(uint8_t *)gmem_ptr(&bn->mem, STATUS_GPA + i, 1);
		if (st != VIRTIO_BLK_S_OK)
			bn->errors++;
		bn->slot[i].busy = false;
		bn->free_slots[bn->nr_free++] = i;
		record_latency(bn, t - bn->slot[i].t_submit);
		bn->ios++;
		n++;
	}
	return n;
}

/*
 * virtblk_done(): with EVENT_IDX, callbacks off while reaping and on
 * again after (used_event = the next entry); a completion that came in
 * between is reaped at once rather than left without an interrupt.
 * Without it, as before: the flags are not touched.
 */
static unsigned int reap(struct bench *bn)
{
	unsigned int n = 0;

	if (!bn->drv.event_idx)
		return reap_used(bn);
	do {
		vdrv_disable_cb(&bn->drv);
		n += reap_used(bn);
	} while (!vdrv_enable_cb(&bn->drv));
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * Per-thread CPU time and context switches from /proc/self/task, for
 * "where does the time go" without perf's overhead.  snap[] holds one
 * entry per thread: at the start, then the delta at the end.
 */
#define MAX_THREADS 32
struct tstat {
	int tid;
	char comm[32];
	double cpu;			/* seconds, user + system */
	unsigned long vcsw, ivcsw;
};

static unsigned int thread_stats(struct tstat *t)
{
	long hz = sysconf(_SC_CLK_TCK);
	unsigned int n = 0;
	char path[300], buf[1024], *p;
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	FILE *f;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) && n < MAX_THREADS) {
		unsigned long ut, st;

		if (de->d_name[0] == '.')
			continue;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].tid = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		p = strchr(buf, '(');
		if (p && strrchr(buf, ')')) {
			*strrchr(buf, ')') = 0;
			snprintf(t[n].comm, sizeof(t[n].comm), "%s", p + 1);
			p = buf + strlen(buf) + 2;
			/* fields 3..: state ppid pgrp session tty tpgid flags minflt
			 * cminflt majflt cmajflt utime stime */
			if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				   &ut, &st) == 2)
				t[n].cpu = (double)(ut + st) / hz;
		}
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		f = fopen(path, "r");
		if (f) {
			while (fgets(buf, sizeof(buf), f)) {
				sscanf(buf, "voluntary_ctxt_switches: %lu", &t[n].vcsw);
				sscanf(buf, "nonvoluntary_ctxt_switches: %lu", &t[n].ivcsw);
			}
			fclose(f);
		}
		n++;
	}
	closedir(dir);
	return n;
}

static void print_thread_stats(const struct tstat *t0, unsigned int n0, const struct tstat *t1,
			       unsigned int n1, double secs, uint64_t ios)
{
	unsigned int i, j;

	for (i = 0; i < n1; i++) {
		struct tstat d = t1[i];

		for (j = 0; j < n0; j++) {
			if (t0[j].tid == d.tid) {
				d.cpu -= t0[j].cpu;
				d.vcsw -= t0[j].vcsw;
				d.ivcsw -= t0[j].ivcsw;
			}
		}
		printf("blkbench-thread: %-10s cpu_pct=%.0f csw_per_io=%.2f (voluntary %lu, involuntary %lu)\n",
		       d.comm, 100.0 * d.cpu / secs, ios ? (double)(d.vcsw + d.ivcsw) / ios : 0.0,
		       d.vcsw, d.ivcsw);
	}
}

#define HALT_POLL_GROW_START_NS	10000	/* KVM's halt_poll_ns_grow_start */

/*
 * The vCPU halts until the irqfd fires: KVM's halt polling (which checks
 * for a pending interrupt in memory, kvm_vcpu_check_block()), then sleep.
 * The eventfd is what wakes a sleeping vCPU; a vCPU that saw the
 * interrupt while polling only drains it.
 */
static void wait_irq(struct bench *bn)
{
	struct pollfd pfd = { .fd = bn->irq_efd, .events = POLLIN };
	uint64_t v, t0 = now_ns(), halt_ns, end = t0 + bn->vcpu_poll_ns;
	bool polled = false;

	while (bn->vcpu_poll_ns) {
		if (__atomic_exchange_n(&bn->irq_pending, false, __ATOMIC_ACQUIRE)) {
			polled = true;
			break;
		}
		if (now_ns() >= end)
			break;
		__builtin_ia32_pause();
	}
	if (!polled) {
		/*
		 * Interrupts taken while polling left their eventfd counts
		 * (KVM's irqfd consumes them in the kernel, at no cost to the
		 * vCPU): drain them now, then look again, so that poll()
		 * sleeps only until an interrupt not yet taken.
		 */
		if (read(bn->irq_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			die("irq eventfd read");
		if (__atomic_exchange_n(&bn->irq_pending, false, __ATOMIC_ACQUIRE)) {
			polled = true;
		} else {
			if (poll(&pfd, 1, 10000) <= 0)
				die("no completion interrupt within 10 s");
			__atomic_store_n(&bn->irq_pending, false, __ATOMIC_RELAXED);
			if (read(bn->irq_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				die("irq eventfd read");
		}
	}
	/* kvm_vcpu_halt(): grow after a short halt, shrink after a long one. */
	halt_ns = now_ns() - t0;
	if (!bn->halt_poll_ns || halt_ns <= bn->vcpu_poll_ns)
		return;
	if (bn->vcpu_poll_ns && halt_ns > bn->halt_poll_ns) {
		bn->vcpu_poll_ns /= 2;
		if (bn->vcpu_poll_ns < HALT_POLL_GROW_START_NS)
			bn->vcpu_poll_ns = 0;
	} else if (bn->vcpu_poll_ns < bn->halt_poll_ns && halt_ns < bn->halt_poll_ns) {
		bn->vcpu_poll_ns *= 2;
		if (bn->vcpu_poll_ns < HALT_POLL_GROW_START_NS)
			bn->vcpu_poll_ns = HALT_POLL_GROW_START_NS;
		if (bn->vcpu_poll_ns > bn->halt_poll_ns)
			bn->vcpu_poll_ns = bn->halt_poll_ns;
	}
}

/*
 * A poll queue's driver (io_uring IOPOLL, blk_mq_poll -> virtblk_poll):
 * no interrupt wanted, the used ring looked at until something came.
 * Callbacks stay off, as Linux leaves a queue without a callback (with
 * EVENT_IDX, used_event is never moved: the device sends nothing).
 */
static unsigned int poll_reap(struct bench *bn)
{
	unsigned int n;
	uint64_t end = now_ns() + 10000000000ULL;

	while (!(n = reap_used(bn))) {
		if (now_ns() > end)
			die("no completion within 10 s");
		__builtin_ia32_pause();
	}
	return n;
}

/* The interrupt driven reap: vp_interrupt, with the vCPU halted until it comes. */
static unsigned int irq_reap(struct bench *bn)
{
	unsigned int n = 0;
	uint8_t isr;

	/* The irqfd fires; vp_interrupt reads ISR (clearing it). */
	wait_irq(bn);
	bn->irqs++;
	isr = vdrv_read_isr(&bn->drv);
	if (isr & VIRTIO_ISR_QUEUE)
		n = reap(bn);
	if (!n)
		bn->spurious++;
	/*
	 * The EOI: KVM lowers the line and signals the resample fd;
	 * completions since the ISR read get their interrupt now.
	 */
	virtio_pci_irq_eoi(bn->vp);
	return n;
}

static void run(struct bench *bn, double runtime)
{
	struct tstat ts0[MAX_THREADS], ts1[MAX_THREADS];
	unsigned int nts0, nts1;
	uint64_t t0, t_end, t_done;
	unsigned int i, inflight = 0, submitted;
	bool stopping = false;
	double cpu0, cpu;
	const char *rwname[] = { "randread", "randwrite", "read", "write" };

	for (i = 0; i < bn->qd; i++) {
		memset(gmem_ptr(&bn->mem, DATA_GPA + (uint64_t)i * bn->bs, bn->bs), 0x5a + i, bn->bs);
		bn->free_slots[bn->nr_free++] = bn->qd - 1 - i;
	}
	nts0 = thread_stats(ts0);
	cpu0 = cpu_secs();
	t0 = now_ns();
	t_end = t0 + (uint64_t)(runtime * 1e9);
	for (;;) {
		/* blk-mq dispatch: fill every free tag, one kick for the batch. */
		submitted = 0;
		while (!stopping && bn->nr_free) {
			i = bn->free_slots[--bn->nr_free];
			bn->slot[i].busy = true;
			bn->slot[i].t_submit = now_ns();
			add_request(bn, i);
			submitted++;
		}
		if (submitted)
			kick(bn);
		inflight += submitted;
		if (!inflight)
			break;

		inflight -= bn->poll_driver ? poll_reap(bn) : irq_reap(bn);
		if (!stopping && now_ns() >= t_end)
			stopping = true;
	}
	t_done = now_ns();
	cpu = cpu_secs() - cpu0;
	nts1 = thread_stats(ts1);

	qsort(bn->lat, bn->nr_lat, sizeof(*bn->lat), cmp_u64);
	{
		double secs = (t_done - t0) / 1e9;
		double iops = bn->ios / secs;
		struct blk_stats st;

		blk_dev_stats(bn->b, &st);

		printf("blkbench: rw=%s bs=%u qd=%u ios=%llu secs=%.2f iops=%.0f mbps=%.1f "
		       "p50_us=%.1f p99_us=%.1f cpu_pct=%.0f kicks=%llu irqs=%llu spurious=%llu "
		       "device_kicks=%llu device_irqs=%llu errors=%llu halt_poll_us=%llu%s\n",
		       rwname[bn->rw], bn->bs, bn->qd, (unsigned long long)bn->ios, secs, iops,
		       iops * bn->bs / 1e6, pct(bn->lat, bn->nr_lat, 50), pct(bn->lat, bn->nr_lat, 99),
		       100.0 * cpu / secs, (unsigned long long)bn->kicks,
		       (unsigned long long)bn->irqs, (unsigned long long)bn->spurious,
		       (unsigned long long)st.kicks, (unsigned long long)bn->device_irqs,
		       (unsigned long long)bn->errors,
		       (unsigned long long)(bn->halt_poll_ns / 1000),
		       bn->poll_driver ? " driver=poll" : "");
		print_thread_stats(ts0, nts0, ts1, nts1, secs, bn->ios);
	}
}

/*
 * --host-costs: what a system call and a thread wake-up cost on this
 * host, the two prices every virtio request pays more often than a
 * pread does (docs/PERFORMANCE.md).
 */
#define COST_CALLS	200000
#define COST_PINGS	10000

static int ping_efd[2];

static void *ponger(void *arg)
{
	uint64_t v, one = 1;
	int i;

	for (i = 0; i < COST_PINGS; i++)
		if (read(ping_efd[0], &v, sizeof(v)) != sizeof(v) ||
		    write(ping_efd[1], &one, sizeof(one)) != sizeof(one))
			die("ping-pong eventfd");
	return arg;
}

static void host_costs(void)
{
	uint64_t t0, t1, t2, t3, v, one = 1;
	pthread_t t;
	int efd, i;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ping_efd[0] = eventfd(0, EFD_CLOEXEC);
	ping_efd[1] = eventfd(0, EFD_CLOEXEC);
	if (efd < 0 || ping_efd[0] < 0 || ping_efd[1] < 0)
		die("eventfd");
	t0 = now_ns();
	for (i = 0; i < COST_CALLS; i++)
		if (getppid() < 0)
			die("getppid");
	t1 = now_ns();
	for (i = 0; i < COST_CALLS; i++)
		if (write(efd, &one, sizeof(one)) != sizeof(one))
			die("eventfd write");
	t2 = now_ns();
	if (pthread_create(&t, NULL, ponger, NULL))
		die("pthread_create");
	for (i = 0; i < COST_PINGS; i++)
		if (write(ping_efd[0], &one, sizeof(one)) != sizeof(one) ||
		    read(ping_efd[1], &v, sizeof(v)) != sizeof(v))
			die("ping-pong eventfd");
	t3 = now_ns();
	pthread_join(t, NULL);
	printf("host costs: system call %.2f us (getppid), eventfd write %.2f us, "
	       "thread wake-up %.1f us (eventfd ping-pong / 2)\n",
	       (t1 - t0) / 1e3 / COST_CALLS, (t2 - t1) / 1e3 / COST_CALLS,
	       (t3 - t2) / 1e3 / COST_PINGS / 2);
	close(efd);
	close(ping_efd[0]);
	close(ping_efd[1]);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: blkbench --disk 'PATH[,virtio-blk opts]' [--rw randread|randwrite|read|write]\n"
		"                [--bs BYTES] [--qd N] [--runtime SECS] [--segs N] [--no-indirect]\n"
		"                [--halt-poll-us N] [--no-event-idx] [--poll-driver]\n"
		"       blkbench --probe 'PATH[,opts]'   (exit 0 when the device accepts the options)\n"
		"       blkbench --host-costs            (system call and wake-up costs here)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "runtime", required_argument, NULL, 't' },
		{ "segs", required_argument, NULL, 's' },
		{ "no-indirect", no_argument, NULL, 'n' },
		{ "no-event-idx", no_argument, NULL, 'e' },
		{ "probe", required_argument, NULL, 'p' },
		{ "halt-poll-us", required_argument, NULL, 'h' },
		{ "host-costs", no_argument, NULL, 'c' },
		{ "poll-driver", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct virtio_notify notify = { notify_attach, notify_detach, NULL };
	struct virtio_irq irq;
	struct bench *bn;
	const char *disk = NULL;
	double runtime = 5;
	bool want_indirect = true, want_event_idx = true, probe = false;
	int c, ret;

	bn = calloc(1, sizeof(*bn));
	if (!bn)
		die("out of memory");
	bn->rw = RW_RANDREAD;
	bn->bs = 4096;
	bn->qd = 1;
	bn->segs = 1;
	bn->halt_poll_ns = 200000;	/* KVM's default halt_poll_ns on x86 */
	bn->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'd': disk = optarg; break;
		case 'p': disk = optarg; probe = true; break;
		case 'r':
			if (!strcmp(optarg, "randread"))
				bn->rw = RW_RANDREAD;
			else if (!strcmp(optarg, "randwrite"))
				bn->rw = RW_RANDWRITE;
			else if (!strcmp(optarg, "read"))
				bn->rw = RW_READ;
			else if (!strcmp(optarg, "write"))
				bn->rw = RW_WRITE;
			else
				usage();
			break;
		case 'b': bn->bs = strtoul(optarg, NULL, 0); break;
		case 'q': bn->qd = strtoul(optarg, NULL, 0); break;
		case 't': runtime = strtod(optarg, NULL); break;
		case 's': bn->segs = strtoul(optarg, NULL, 0); break;
		case 'n': want_indirect = false; break;
		case 'e': want_event_idx = false; break;
		case 'h': bn->halt_poll_ns = strtoull(optarg, NULL, 0) * 1000; break;
		case 'c': host_costs(); return 0;
		case 'P': bn->poll_driver = true; break;
		default: usage();
		}
	}
	if (!disk || optind != argc)
		usage();
	if (!bn->bs || bn->bs % BLK_SECTOR_SIZE || !bn->qd || bn->qd > MAX_QD || !bn->segs ||
	    bn->segs > MAX_SEGS || bn->bs % bn->segs || (bn->bs / bn->segs) % BLK_SECTOR_SIZE ||
	    DATA_GPA + (uint64_t)bn->qd * bn->bs > RAM_SIZE || runtime <= 0)
		die("bad --bs/--qd/--segs/--runtime (qd <= 256, qd*bs <= 79 MiB)");

	ret = gmem_init(&bn->mem, RAM_SIZE);
	if (ret)
		die("gmem_init failed");
	ret = blk_dev_create(&bn->b, disk, &bn->mem, 1);
	if (ret) {
		fprintf(stderr, "blkbench: the device refused '%s': %s\n", disk, strerror(-ret));
		return 1;
	}
	if (probe) {
		blk_dev_destroy(bn->b);
		gmem_free(&bn->mem);
		return 0;
	}
	bn->vp = blk_dev_transport(bn->b);
	bn->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bn->irq_efd < 0)
		die("eventfd");
	irq = (struct virtio_irq) { .assert_line = irq_assert, .resample = true, .opaque = bn };
	virtio_pci_set_irq(bn->vp, &irq);
	ret = virtio_pci_set_notify(bn->vp, &notify);
	if (ret || bn->vp->kick_efd[0] < 0)
		die("virtio_pci_set_notify failed");
	ret = blk_dev_start(bn->b);
	if (ret)
		die("blk_dev_start failed");

	driver_probe(bn, want_indirect, want_event_idx);
	run(bn, runtime);

	/* virtblk_remove: reset the device (waits for in-flight), then free. */
	vdrv_reset(&bn->drv);
	ret = blk_dev_destroy(bn->b);
	close(bn->irq_efd);
	gmem_free(&bn->mem);
	free(bn->lat);
	if (bn->errors) {
		fprintf(stderr, "blkbench: %llu requests failed\n", (unsigned long long)bn->errors);
		return 1;
	}
	free(bn);
	return ret ? 1 : 0;
}
