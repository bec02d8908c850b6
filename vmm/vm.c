// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/platform/cmos_rtc.h"
#include "devices/platform/debug_exit.h"
#include "devices/platform/i8042.h"
#include "devices/platform/ioport_sink.h"
#include "devices/serial/uart16550.h"
#include "devices/virtio-blk/blk.h"
#include "lib/efd.h"
#include "lib/util.h"
#include "vmm/console.h"
#include "vmm/layout.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define COM1_PORT	0x3f8
#define COM1_IRQ	4

/* Memory BARs live in the RAM gap, and nothing of theirs under the IOAPIC. */
_Static_assert(PCI_MMIO_BASE >= GMEM_32BIT_GAP_START && PCI_MMIO_END <= IOAPIC_ADDR,
	       "PCI memory window outside the gap below the IOAPIC");

static void vm_stop_cb(void *opaque, int status, const char *why)
{
	vm_request_stop(opaque, status, why);
}

static void vm_irq_cb(void *opaque, unsigned int gsi, int level)
{
	struct vm *vm = opaque;
	int ret = kvm_irq_line(&vm->kvm, gsi, level);

	if (ret)
		pr_warn("KVM_IRQ_LINE %u=%d: %s", gsi, level, strerror(-ret));
}

void vm_request_stop(struct vm *vm, int status, const char *why)
{
	unsigned int i;
	int err;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->stop_lock);
		return;
	}
	vm->stopping = true;
	vm->exit_status = status;
	snprintf(vm->stop_why, sizeof(vm->stop_why), "%s", why);
	pthread_mutex_unlock(&vm->stop_lock);

	for (i = 0; i < vm->nr_vcpus; i++)
		if (!pthread_equal(vm->vcpu[i].thread, pthread_self()))
			vcpu_kick(&vm->vcpu[i]);
	err = efd_signal(vm->stop_efd);
	if (err)
		pr_warn("cannot wake the main loop: %s", strerror(-err));
}

bool vm_stopping(struct vm *vm)
{
	bool s;

	pthread_mutex_lock(&vm->stop_lock);
	s = vm->stopping;
	pthread_mutex_unlock(&vm->stop_lock);
	return s;
}

static int vm_compose_cmdline(struct vm *vm, char *buf, size_t len,
			      struct host_cmdline_added *added)
{
	const char *user = vm->opt->cmdline ? vm->opt->cmdline : OPT_DEFAULT_CMDLINE;
	int ret = host_cmdline_compose(buf, len, user, vm->host, vm->opt->host_quirks, added);

	if (ret == -E2BIG)
		pr_err("--cmdline: clearcpuid= with the %s host's own features is longer than the %d characters Linux reads (the host's: %s)",
		       host_kind_name(vm->host), CLEARCPUID_MAX, host_pvm_clearcpuid());
	else if (ret < 0)
		pr_err("--cmdline: too long (at most %zu bytes with host additions)", len - 1);
	return ret;
}

static int vm_create_devices(struct vm *vm)
{
	static const uint16_t sinks[] = { IOPORT_SINK_POST_PORT, IOPORT_SINK_DELAY_PORT };
	size_t i;
	int ret;

	vm->stop = (struct vm_stop) { .request = vm_stop_cb, .opaque = vm };
	vm->uart_irq = (struct irq_line) { .set_level = vm_irq_cb, .opaque = vm, .gsi = COM1_IRQ };

	vm->uart = uart_create(&vm->uart_irq, STDOUT_FILENO);
	vm->rtc = cmos_rtc_create();
	vm->i8042 = i8042_create(&vm->stop);
	vm->debug_exit = debug_exit_create(&vm->stop);
	if (!vm->uart || !vm->rtc || !vm->i8042 || !vm->debug_exit) {
		pr_err("cannot create the legacy devices: out of memory");
		return -ENOMEM;
	}

	ret = io_bus_register(&vm->pio, COM1_PORT, 8, &uart_io_ops, vm->uart, "uart");
	ret = ret ?: io_bus_register(&vm->pio, CMOS_RTC_BASE, CMOS_RTC_IO_LEN, &cmos_rtc_io_ops, vm->rtc, "cmos");
	ret = ret ?: io_bus_register(&vm->pio, I8042_DATA_PORT, 1, &i8042_data_io_ops, vm->i8042, "i8042");
	ret = ret ?: io_bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_io_ops, vm->i8042, "i8042");
	ret = ret ?: io_bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_LEN,
				     &debug_exit_io_ops, vm->debug_exit, "debug-exit");
	for (i = 0; !ret && i < ARRAY_SIZE(sinks); i++)
		ret = io_bus_register(&vm->pio, sinks[i], 1,
				      &ioport_sink_io_ops, NULL, "delay");
	if (ret)
		pr_err("cannot register legacy I/O ports: %s", strerror(-ret));
	return ret;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct slot_opt *x = *(const struct slot_opt *const *)a;
	const struct slot_opt *y = *(const struct slot_opt *const *)b;

	return (int)x->slot - (int)y->slot;
}

static int vm_create_pci_devices(struct vm *vm)
{
	const struct slot_opt *sorted[PCI_MAX_SLOTS];
	unsigned int i, n = vm->opt->nr_slots;
	int ret;

	for (i = 0; i < n; i++)
		sorted[i] = &vm->opt->slot[i];
	qsort(sorted, n, sizeof(sorted[0]), slot_cmp);

	for (i = 0; i < n; i++) {
		const struct slot_opt *s = sorted[i];
		struct vm_disk *d;

		if (!strcmp(s->device, "hostbridge"))
			continue;	/* always there */
		/* options_device_known() let only these through */
		d = &vm->disk[vm->nr_disks];
		d->slot = s->slot;
		ret = blk_dev_create(&d->blk, s->args ? s->args : "", &vm->mem, vm->opt->nr_cpus);
		if (ret)
			return ret;
		vm->nr_disks++;
		ret = pci_bus_add(&vm->pci, &blk_dev_transport(d->blk)->pci, s->slot);
		if (ret) {
			pr_err("-s %u,%s: cannot put the device on the PCI bus: %s",
			       s->slot, s->device, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int vm_write_mptable(struct vm *vm)
{
	struct pci_irq irqs[PCI_MAX_DEVICES];
	unsigned int n = pci_bus_irqs(&vm->pci, irqs, ARRAY_SIZE(irqs));

	return mptable_write(&vm->mem, vm->opt->nr_cpus, irqs, n);
}

static int vm_wire_disks(struct vm *vm)
{
	unsigned int i;
	int ret;

	vm->notify = virtio_kvm_notify_template;
	vm->notify.opaque = &vm->kvm;
	for (i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *d = &vm->disk[i];

		ret = virtio_kvm_irq_init(&d->irq, &vm->kvm, blk_dev_transport(d->blk),
					  vm->host == HOST_PVM);
		if (ret)
			return ret;
		d->irq_wired = true;
		if (blk_dev_transport(d->blk)->has_msix) {
			ret = virtio_kvm_msix_init(&d->msix, &vm->kvm, blk_dev_transport(d->blk));
			if (ret)
				return ret;
		}
		ret = virtio_pci_set_notify(blk_dev_transport(d->blk), &vm->notify);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int vm_create(struct vm *vm, const struct options *opt, uint64_t t_main_ns)
{
	char cmdline[BOOT_CMDLINE_MAX];
	struct boot_config bc;
	unsigned int i;
	struct host_cmdline_added added;
	int ret, appended;

	memset(vm, 0, sizeof(*vm));
	vm->opt = opt;
	vm->t_main_ns = t_main_ns;
	/* --stats reads it at the end, when the seccomp filter allows no open. */
	vm->status_fd = opt->stats ? open("/proc/self/status", O_RDONLY | O_CLOEXEC) : -1;
	vm->stop_efd = -1;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);

	/* 1. Host kind, and so the cmdline the kernel gets. */
	vm->host = opt->host_kind >= 0 ? (enum host_kind)opt->host_kind : host_detect("");
	vm->quirks = opt->host_quirks && vm->host == HOST_PVM;
	appended = vm_compose_cmdline(vm, cmdline, sizeof(cmdline), &added);
	if (appended < 0)
		return EXIT_SETUP_ERROR;

	/*
	 * 2. Guest RAM and the kernel: needs no KVM, so a bad kernel or
	 * initrd is reported before anything about the host.
	 */
	ret = gmem_init(&vm->mem, opt->mem_size);
	if (ret) {
		pr_err("-m: cannot allocate %llu MiB of guest RAM: %s",
		       (unsigned long long)(opt->mem_size >> 20), strerror(-ret));
		return EXIT_SETUP_ERROR;
	}
	bc = (struct boot_config) {
		.kernel_path = opt->kernel, .initrd_path = opt->initrd, .cmdline = cmdline,
	};
	if (kernel_load(&vm->mem, &bc, &vm->entry))
		return EXIT_SETUP_ERROR;

	/*
	 * 3. PCI devices, in slot order so that the lowest slot becomes
	 * /dev/vda; disks are opened here, so a bad image is reported
	 * before anything about KVM.  Then the MP table, which routes their
	 * interrupts.
	 */
	if (pci_bus_init(&vm->pci, &vm->pio, &vm->mmio))
		return EXIT_SETUP_ERROR;
	vm->pci_ready = true;
	if (vm_create_pci_devices(vm))
		return EXIT_SETUP_ERROR;
	if (vm_write_mptable(vm))
		return EXIT_SETUP_ERROR;

	/* 4. The KVM VM with its in-kernel irqchip and PIT, and RAM mapped. */
	if (kvm_init(&vm->kvm, opt->nr_cpus))
		return EXIT_SETUP_ERROR;
	if (kvm_map_memory(&vm->kvm, &vm->mem))
		return EXIT_SETUP_ERROR;
	/* Said only once the VM will run, so that an error stays one line. */
	if (appended)
		pr_info("%s host: added to the guest cmdline: %.*s (--no-host-quirks turns this off)",
			host_kind_name(vm->host), (int)added.len, cmdline + added.off);
	if (vm->host == HOST_PVM && opt->nr_cpus > 1)
		pr_warn("%s host: secondary vCPUs are not known to start in KVM's instruction emulator (Linux 6.1 waits at \"Booting SMP configuration\"); -c 1 boots",
			host_kind_name(vm->host));
	vm->stop_efd = efd_open();
	if (vm->stop_efd < 0) {
		pr_err("eventfd: %s", strerror(-vm->stop_efd));
		return EXIT_SETUP_ERROR;
	}

	/* 5. Legacy devices, and the virtio notification paths through KVM. */
	if (vm_create_devices(vm))
		return EXIT_SETUP_ERROR;
	if (vm_wire_disks(vm))
		return EXIT_SETUP_ERROR;

	/* 6. vCPUs; only the boot vCPU gets register state, APs wait for SIPI. */
	vm->vcpu = calloc(opt->nr_cpus, sizeof(*vm->vcpu));
	if (!vm->vcpu) {
		pr_err("out of memory for %u vCPUs", opt->nr_cpus);
		return EXIT_SETUP_ERROR;
	}
	for (i = 0; i < opt->nr_cpus; i++) {
		vm->nr_vcpus = i + 1;
		if (vcpu_create(vm, &vm->vcpu[i], i))
			return EXIT_SETUP_ERROR;
	}
	if (vcpu_setup_boot(&vm->vcpu[0], &vm->entry))
		return EXIT_SETUP_ERROR;

	/* 7. Device threads last: nothing can kick them before this. */
	for (i = 0; i < vm->nr_disks; i++)
		if (blk_dev_start(vm->disk[i].blk))
			return EXIT_SETUP_ERROR;
	return 0;
}

/*
 * SIGUSR2: the --stats lines so far, so a benchmark can take the counters
 * before and after one workload without stopping the VM.  The vCPU
 * threads keep counting while they are read: a snapshot, not a cut.
 */
static void vm_snapshot_stats(struct vm *vm)
{
	if (!vm->opt->stats)
		return;
	pr_info("stats: snapshot (SIGUSR2)");
	vm_print_stats(vm);
}

static void sigusr1_nop(int sig)
{
}

void vm_block_signals(void)
{
	sigset_t set;

	/*
	 * Before any thread exists: every thread inherits the mask, so
	 * SIGINT/SIGTERM/SIGHUP reach only the main loop's signalfd (a disk
	 * worker that did not block them would take the default action and
	 * kill the process).  vCPU threads unblock SIGUSR1, their kick.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/*
 * The main thread owns the terminal and signals; vCPU threads only run
 * guest code.  It returns when something asked the VM to stop.
 */
int vm_run(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = sigusr1_nop };	/* no SA_RESTART */
	struct console con;
	sigset_t set;
	int sfd, ret = 0;
	bool stdin_open = true;
	unsigned int i;

	sigaction(SIGUSR1, &sa, NULL);
	/* Blocked in every thread since vm_block_signals(); read here. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return EXIT_SETUP_ERROR;
	}

	console_init(&con, STDIN_FILENO);
	if (console_raw(&con))
		pr_warn("cannot put the terminal in raw mode: %s", strerror(errno));

	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(&vm->vcpu[i])) {
			vm_request_stop(vm, EXIT_SETUP_ERROR, "vCPU thread");
			break;
		}
	}

	while (!vm_stopping(vm)) {
		struct pollfd pfd[3 + PCI_MAX_SLOTS] = {
			{ .fd = vm->stop_efd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = -1, .events = POLLIN },
		};
		bool want = stdin_open && console_wants_input(&con, vm->uart);
		/* When the UART is full, come back soon to hand it more. */
		int timeout = stdin_open && !want ? 10 : -1;

		if (want)
			pfd[2].fd = con.fd;
		for (i = 0; i < vm->nr_disks; i++) {
			int t = virtio_kvm_irq_timeout(&vm->disk[i].irq, mono_ns());

			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
			pfd[3 + i] = (struct pollfd) {
				.fd = virtio_kvm_irq_fd(&vm->disk[i].irq), .events = POLLIN,
			};
		}
		if (poll(pfd, 3 + vm->nr_disks, timeout) < 0 &&
		    errno != EINTR) {
			pr_err("poll: %s", strerror(errno));
			vm_request_stop(vm, EXIT_SETUP_ERROR, "main loop failed");
			break;
		}
		for (i = 0; i < vm->nr_disks; i++)
			if (pfd[3 + i].revents & POLLIN)
				virtio_kvm_irq_resample(&vm->disk[i].irq);
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si = { 0 };

			if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
			    si.ssi_signo == SIGUSR2) {
				vm_snapshot_stats(vm);
			} else if (si.ssi_signo) {
				char why[64];

				snprintf(why, sizeof(why), "signal %s", strsignal(si.ssi_signo));
				vm_request_stop(vm, EXIT_SIGNAL_BASE + si.ssi_signo, why);
			}
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			switch (console_input(&con, vm->uart)) {
			case CONSOLE_QUIT:
				vm_request_stop(vm, EXIT_GUEST_DONE, "quit from the console (Ctrl-A x)");
				break;
			case CONSOLE_EOF:
				stdin_open = false;
				break;
			default:
				break;
			}
		}
	}

	/*
	 * Kick again: a vCPU whose thread was still starting when the stop
	 * came was not marked started then, and may be sitting in KVM_RUN.
	 */
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpu[i]);
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpu[i].started)
			pthread_join(vm->vcpu[i].thread, NULL);
	console_restore();
	close(sfd);

	pthread_mutex_lock(&vm->stop_lock);
	ret = vm->exit_status;
	pthread_mutex_unlock(&vm->stop_lock);
	pr_info("VM stopped: %s (exit status %d)", vm->stop_why, ret);
	return ret;
}

/* Bytes of guest RAM the host has resident (the pages the guest touched). */
static uint64_t vm_guest_resident(const struct vm *vm)
{
	unsigned char vec[4096];
	uint64_t bytes = 0, off, n, i;
	unsigned int r;

	for (r = 0; r < vm->mem.nr_regions; r++) {
		const struct gmem_region *g = &vm->mem.region[r];

		for (off = 0; off < g->size; off += n * 4096) {
			n = MIN((g->size - off) / 4096, (uint64_t)sizeof(vec));
			if (mincore(g->hva + off, n * 4096, vec) < 0)
				return 0;
			for (i = 0; i < n; i++)
				bytes += (vec[i] & 1) * 4096ull;
		}
	}
	return bytes;
}

/* VmRSS from /proc/self/status, read through an fd opened before seccomp. */
static uint64_t vm_rss_bytes(const struct vm *vm)
{
	unsigned long long kb = 0;
	char buf[4096], *p;
	ssize_t n;

	if (vm->status_fd < 0)
		return 0;
	n = pread(vm->status_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strstr(buf, "VmRSS:");
	if (!p || sscanf(p, "VmRSS: %llu kB", &kb) != 1)
		return 0;
	return kb * 1024;
}

/*
 * What tinyvmm itself costs: time to the first KVM_RUN (from exec when
 * the caller put its exec time, in seconds as bash's $EPOCHREALTIME, in
 * TINYVMM_EXEC_T0; otherwise from main()), and resident memory beyond the
 * guest RAM the guest touched.
 */
static void vm_print_costs(struct vm *vm)
{
	const char *t0 = getenv("TINYVMM_EXEC_T0");
	uint64_t first = __atomic_load_n(&vm->t_first_run_ns, __ATOMIC_ACQUIRE);
	uint64_t rss = vm_rss_bytes(vm), guest = vm_guest_resident(vm);
	char exec_part[64] = "";

	if (first && t0 && *t0) {
		double exec_s = strtod(t0, NULL);

		snprintf(exec_part, sizeof(exec_part), ", %.3f ms after exec",
			 (first / 1e9 - exec_s) * 1e3);
	}
	if (first)
		pr_info("stats: start-up: first KVM_RUN %.3f ms after main()%s",
			(first - vm->t_main_ns) / 1e6, exec_part);
	pr_info("stats: memory: %llu KiB resident beyond the %llu KiB of guest RAM touched (VmRSS %llu KiB)",
		(unsigned long long)(rss > guest ? (rss - guest) >> 10 : 0),
		(unsigned long long)(guest >> 10), (unsigned long long)(rss >> 10));
}

/* The lock because a BAR move may reshuffle the ranges meanwhile (SIGUSR2). */
static void vm_print_bus_stats(const char *what, struct io_bus *bus)
{
	char line[1024];
	unsigned int i;
	int n = 0;

	line[0] = 0;
	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->nr; i++)
		if (n < (int)sizeof(line))
			n += snprintf(line + n, sizeof(line) - n, " %s@0x%llx=%llu",
				      bus->range[i].name, (unsigned long long)bus->range[i].base,
				      (unsigned long long)bus->range[i].accesses);
	pthread_rwlock_unlock(&bus->lock);
	if (n < (int)sizeof(line))
		snprintf(line + n, sizeof(line) - n, " unclaimed=%llu",
			 (unsigned long long)bus->unclaimed);
	pr_info("stats: %s exits by device:%s", what, line);
}

/* Accesses that reached opaque's ranges on bus (a BAR moved meanwhile starts again). */
static uint64_t vm_bus_accesses(struct io_bus *bus, const void *opaque)
{
	uint64_t sum = 0;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->nr; i++)
		if (bus->range[i].opaque == opaque)
			sum += bus->range[i].accesses;
	pthread_rwlock_unlock(&bus->lock);
	return sum;
}

static double per(uint64_t n, uint64_t requests)
{
	return requests ? (double)n / requests : 0;
}

/* The VM's exits to user space by reason: counts, or per request when requests is set. */
static void vm_print_exits(const uint64_t *total, uint64_t requests)
{
	char line[1024];
	unsigned int r;
	int n = 0;

	line[0] = 0;
	for (r = 0; r < VM_EXIT_REASONS; r++) {
		if (!total[r] || n >= (int)sizeof(line))
			continue;
		if (requests)
			n += snprintf(line + n, sizeof(line) - n, " %s=%.3f", vcpu_exit_name(r),
				      per(total[r], requests));
		else
			n += snprintf(line + n, sizeof(line) - n, " %s=%llu", vcpu_exit_name(r),
				      (unsigned long long)total[r]);
	}
	if (requests)
		pr_info("stats: exits to user space per request (%llu requests):%s",
			(unsigned long long)requests, n ? line : " none");
	else
		pr_info("stats: exits to user space:%s", n ? line : " none");
}

/* "a,b,c" of n counters into buf. */
static void vm_print_list(char *buf, size_t size, const uint64_t *v, unsigned int n)
{
	size_t len = 0;
	unsigned int i;

	for (i = 0; i < n && len < size; i++)
		len += snprintf(buf + len, size - len, "%s%llu", i ? "," : "",
				(unsigned long long)v[i]);
}

/*
 * One disk's counters (requests and interrupts per queue too), then what
 * they come to per request: kicks, interrupts (INTx or MSI-X) and the
 * exits its registers took.  Returns its requests.
 */
static uint64_t vm_print_disk(struct vm *vm, const struct vm_disk *d)
{
	char per_queue[BLK_MAX_QUEUES * 21] = "", per_queue_irq[BLK_MAX_QUEUES * 21] = "";
	struct virtio_pci *vp = blk_dev_transport(d->blk);
	uint64_t msix = __atomic_load_n(&d->msix.sent, __ATOMIC_RELAXED);
	struct blk_stats st;

	blk_dev_stats(d->blk, &st);
	vm_print_list(per_queue, sizeof(per_queue), st.queue_requests, st.nr_queues);
	vm_print_list(per_queue_irq, sizeof(per_queue_irq), st.queue_interrupts, st.nr_queues);
	pr_info("stats: virtio-blk slot %u: requests=%llu queue-requests=%s queue-interrupts=%s kicks=%llu "
		"notify-exits=%llu notify-exits-after-driver-ok=%llu "
		"irq-asserts=%llu irq-resamples=%llu irq-reasserts=%llu msix-messages=%llu",
		d->slot, (unsigned long long)st.requests, per_queue, per_queue_irq,
		(unsigned long long)st.kicks,
		(unsigned long long)st.notify_exits,
		(unsigned long long)st.notify_exits_after_driver_ok,
		(unsigned long long)d->irq.asserts, (unsigned long long)d->irq.resamples,
		(unsigned long long)d->irq.reasserts, (unsigned long long)msix);
	pr_info("stats: virtio-blk slot %u per request: kicks %.3f, interrupts %.3f (%s), BAR0 exits %.3f, MSI-X table exits %.3f",
		d->slot, per(st.kicks, st.requests), per(d->irq.asserts + msix, st.requests),
		msix ? (d->irq.asserts ? "MSI-X and INTx" : "MSI-X") : "INTx",
		per(vm_bus_accesses(&vm->pio, vp), st.requests),
		per(vm_bus_accesses(&vm->mmio, &vp->msix), st.requests));
	return st.requests;
}

void vm_print_stats(struct vm *vm)
{
	uint64_t total[VM_EXIT_REASONS] = { 0 }, requests = 0;
	unsigned int i, r;

	for (i = 0; i < vm->nr_vcpus; i++)
		for (r = 0; r < VM_EXIT_REASONS; r++)
			total[r] += vm->vcpu[i].exits[r];
	vm_print_exits(total, 0);

	vm_print_bus_stats("port I/O", &vm->pio);
	vm_print_bus_stats("MMIO", &vm->mmio);

	for (i = 0; i < vm->nr_disks; i++)
		requests += vm_print_disk(vm, &vm->disk[i]);
	if (requests)
		vm_print_exits(total, requests);

	vm_print_costs(vm);

	for (i = 0, r = 0; i < vm->nr_vcpus; i++)
		r += vm->vcpu[i].quirks_applied;
	if (vm->quirks)
		pr_info("stats: PVM quirks applied: %u", r);
}

int vm_destroy(struct vm *vm)
{
	unsigned int i;
	int ret = 0;

	/*
	 * The bus first (it still points at the devices' PCI functions), then
	 * the disks: their threads finish what is in flight and the media is
	 * flushed.  The vCPUs have stopped, so nothing reaches the bus now.
	 */
	if (vm->pci_ready)
		pci_bus_destroy(&vm->pci);
	vm->pci_ready = false;
	for (i = 0; i < vm->nr_disks; i++) {
		/* Late completions still raise the irqfd: close it after. */
		if (blk_dev_destroy(vm->disk[i].blk))
			ret = EXIT_SETUP_ERROR;
		if (vm->disk[i].irq_wired)
			virtio_kvm_irq_exit(&vm->disk[i].irq);
		virtio_kvm_msix_exit(&vm->disk[i].msix);
	}
	vm->nr_disks = 0;
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpu[i]);
	free(vm->vcpu);
	vm->vcpu = NULL;
	vm->nr_vcpus = 0;
	if (vm->uart)
		uart_destroy(vm->uart);
	if (vm->rtc)
		cmos_rtc_destroy(vm->rtc);
	if (vm->i8042)
		i8042_destroy(vm->i8042);
	if (vm->debug_exit)
		debug_exit_destroy(vm->debug_exit);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	kvm_exit(&vm->kvm);
	gmem_free(&vm->mem);
	io_bus_destroy(&vm->mmio);
	io_bus_destroy(&vm->pio);
	pthread_mutex_destroy(&vm->stop_lock);
	if (vm->status_fd >= 0)
		close(vm->status_fd);
	vm->status_fd = -1;
	return ret;
}

unsigned int vm_seccomp_flags(const struct vm *vm)
{
	unsigned int i, flags = 0;

	for (i = 0; i < vm->nr_disks; i++)
		flags |= vmm_seccomp_socket_flag(blk_dev_sock_family(vm->disk[i].blk));
	return flags;
}
