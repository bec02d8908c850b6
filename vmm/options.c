// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "vmm/host.h"
#include "vmm/options.h"

static const char *const known_devices[] = {
	"hostbridge",	/* ACRN's "-s 0:0,hostbridge": always present at 00:00.0 */
	"virtio-blk",
};

bool options_device_known(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(known_devices); i++)
		if (!strcmp(name, known_devices[i]))
			return true;
	return false;
}

void options_usage(FILE *f)
{
	fputs(
"Usage: tinyvmm [options] -s <slot>,<device>[,<args>] ... KERNEL\n"
"Boot a Linux KERNEL (ELF vmlinux with a PVH note, or bzImage) under KVM.\n"
"\n"
"Options:\n"
"  -m, --memory SIZE        guest RAM, with K, M or G suffix; a plain number\n"
"                           is MiB (default 256M)\n"
"  -c, --cpus N             number of vCPUs (default 1, at most 64)\n"
"  -s, --slot SLOT,DEV[,ARGS]\n"
"                           put PCI device DEV in slot SLOT (1-31) of bus 0;\n"
"                           repeat for more devices\n"
"      --cmdline STRING     kernel command line\n"
"                           (default \"" OPT_DEFAULT_CMDLINE "\")\n"
"      --initrd FILE        load FILE as the initial ramdisk\n"
"      --stats              print VM exits by reason, and per disk kicks,\n"
"                           interrupts and exits per request, when the VM\n"
"                           stops, and on SIGUSR2 without stopping it\n"
"      --no-host-quirks     apply no workarounds for PVM (no VT-x/AMD-V) hosts\n"
"      --host-kind KIND     take the host for KIND (vmx, svm or pvm) instead of\n"
"                           detecting it; pvm tests the PVM workarounds anywhere\n"
"      --print-host-kind    print the host's kind as detected (vmx, svm, pvm,\n"
"                           unknown, or none without a usable KVM device), exit\n"
"      --no-seccomp         do not confine tinyvmm to the system calls it needs\n"
"                           (for debugging; a forbidden call ends tinyvmm with\n"
"                           one line naming it, and status 159)\n"
"  -v, --verbose            log debug messages (unhandled I/O and the like)\n"
"  -h, --help               show this help and exit\n"
"  -V, --version            show the version and exit\n"
"\n"
"Devices:\n"
"  virtio-blk,PATH[,writethru|writeback][,ro][,direct][,sectorsize=L[/P]]\n"
"             [,range=LBA/SIZE][,qsize=N][,serial=STR][,aio=io_uring|threads]\n"
"             [,poll=US][,discard=unmap|ignore][,msix=on|off][,mq=N]\n"
"                           legacy virtio block device backed by a file or\n"
"                           block device; the lowest slot is /dev/vda;\n"
"                           range= counts sectors of the logical size;\n"
"                           direct bypasses the host page cache (O_DIRECT);\n"
"                           msix=off: INTx only (default: MSI-X offered);\n"
"                           mq=N: request queues, each with its own thread\n"
"                           (1..16, default one per vCPU)\n"
"  virtio-blk,nbd://HOST[:PORT]/EXPORT[,...]\n"
"  virtio-blk,nbd+unix:///EXPORT?socket=SOCKET[,...]\n"
"                           the same on an NBD export (no direct, no aio=),\n"
"                           [,reconnect-delay=MS]: first retry after a lost\n"
"                           connection (default 500, doubling up to 30 s)\n"
"                           [,timeout=SECONDS]: a request unanswered that\n"
"                           long drops the connection as lost (default 30)\n"
"  hostbridge               accepted in slot 0 only (always present)\n"
"\n"
"The console is a 16550A UART (ttyS0) on stdin/stdout; type Ctrl-A x to quit.\n"
"Exit status: 0 when the guest reboots or halts, 1 on a setup error,\n"
"2 on a usage error, 3 when the guest crashes the vCPU, the value the guest\n"
"writes to debug-exit port 0x501, or 128+N when stopped by signal N.\n"
"See tinyvmm(1).\n", f);
}

static int parse_slot(struct options *o, const char *spec)
{
	struct slot_opt *s;
	char *copy, *p, *dev, *args, *end;
	unsigned long slot, func = 0;
	unsigned int i;
	bool bad;

	if (o->nr_slots == PCI_MAX_SLOTS) {
		pr_err("-s %s: too many devices (at most %d)", spec, PCI_MAX_SLOTS);
		return EXIT_SETUP_ERROR;
	}
	copy = strdup(spec);
	if (!copy)
		return EXIT_SETUP_ERROR;

	p = strchr(copy, ',');
	if (!p) {
		pr_err("-s %s: expected <slot>,<device>[,<args>]", spec);
		free(copy);
		return EXIT_USAGE;
	}
	*p = 0;
	dev = p + 1;
	args = strchr(dev, ',');
	if (args)
		*args++ = 0;

	errno = 0;
	slot = strtoul(copy, &end, 10);
	if (*end == ':') {
		func = strtoul(end + 1, &end, 10);
	}
	if (errno || end == copy || *end || slot >= PCI_MAX_SLOTS || func != 0) {
		pr_err("-s %s: bad slot '%s' (expected 0-31, function 0)", spec, copy);
		free(copy);
		return EXIT_SETUP_ERROR;
	}
	if (!options_device_known(dev)) {
		pr_err("-s %s: unknown device '%s' (known: virtio-blk, hostbridge)", spec, dev);
		free(copy);
		return EXIT_USAGE;
	}
	if ((slot == 0) != !strcmp(dev, "hostbridge")) {
		pr_err("-s %s: slot 0 holds the host bridge and nothing else", spec);
		free(copy);
		return EXIT_SETUP_ERROR;
	}
	for (i = 0; i < o->nr_slots; i++) {
		if (o->slot[i].slot == slot) {
			pr_err("-s %s: slot %lu is already used", spec, slot);
			free(copy);
			return EXIT_SETUP_ERROR;
		}
	}
	s = &o->slot[o->nr_slots++];
	s->slot = slot;
	s->device = strdup(dev);
	s->args = args && *args ? strdup(args) : NULL;
	bad = !s->device || (args && *args && !s->args);
	free(copy);
	return bad ? EXIT_SETUP_ERROR : 0;
}

enum {
	OPT_CMDLINE = 0x100,
	OPT_INITRD,
	OPT_STATS,
	OPT_NO_HOST_QUIRKS,
	OPT_HOST_KIND,
	OPT_PRINT_HOST_KIND,
	OPT_NO_SECCOMP,
};

static const struct option long_opts[] = {
	{ "memory", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "slot", required_argument, NULL, 's' },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "no-host-quirks", no_argument, NULL, OPT_NO_HOST_QUIRKS },
	{ "host-kind", required_argument, NULL, OPT_HOST_KIND },
	{ "print-host-kind", no_argument, NULL, OPT_PRINT_HOST_KIND },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int options_parse(struct options *o, int argc, char **argv)
{
	uint64_t v;
	int c, ret;

	memset(o, 0, sizeof(*o));
	o->mem_size = OPT_DEFAULT_MEM;
	o->nr_cpus = 1;
	o->host_quirks = true;
	o->host_kind = -1;
	o->seccomp = true;

	optind = 0;	/* full getopt reset: tests parse more than once */
	opterr = 0;	/* we print our own one-line errors */
	while ((c = getopt_long(argc, argv, ":m:c:s:vhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_mem_size(optarg, &v) || v % 4096 || v < (16ULL << 20)) {
				pr_err("-m %s: bad memory size (expected e.g. 256M or 2G, at least 16M, a multiple of 4K)",
				       optarg);
				return EXIT_SETUP_ERROR;
			}
			o->mem_size = v;
			break;
		case 'c':
			if (parse_u64(optarg, &v) || v < 1 || v > OPT_MAX_CPUS) {
				pr_err("-c %s: bad vCPU count (expected 1-%d)", optarg, OPT_MAX_CPUS);
				return EXIT_SETUP_ERROR;
			}
			o->nr_cpus = v;
			break;
		case 's':
			ret = parse_slot(o, optarg);
			if (ret)
				return ret;
			break;
		case OPT_CMDLINE:
			o->cmdline = optarg;
			break;
		case OPT_INITRD:
			o->initrd = optarg;
			break;
		case OPT_STATS:
			o->stats = true;
			break;
		case OPT_NO_HOST_QUIRKS:
			o->host_quirks = false;
			break;
		case OPT_HOST_KIND:
			o->host_kind = host_kind_parse(optarg);
			if (o->host_kind < 0 || o->host_kind == HOST_UNKNOWN) {
				pr_err("--host-kind %s: unknown host kind (expected vmx, svm or pvm)",
				       optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_PRINT_HOST_KIND:
			o->print_host_kind = true;
			return 0;
		case OPT_NO_SECCOMP:
			o->seccomp = false;
			break;
		case 'v':
			log_verbose++;
			break;
		case 'h':
			o->help = true;
			return 0;
		case 'V':
			o->version = true;
			return 0;
		case ':':
			pr_err("option '%s' needs an argument", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (optopt)
				pr_err("unknown option '-%c' (see tinyvmm --help)", optopt);
			else
				pr_err("unknown option '%s' (see tinyvmm --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		pr_err("no KERNEL given (see tinyvmm --help)");
		return EXIT_USAGE;
	}
	if (argc - optind > 1) {
		pr_err("unexpected argument '%s' after KERNEL '%s'", argv[optind + 1], argv[optind]);
		return EXIT_USAGE;
	}
	o->kernel = argv[optind];
	return 0;
}

void options_free(struct options *o)
{
	unsigned int i;

	for (i = 0; i < o->nr_slots; i++) {
		free(o->slot[i].device);
		free(o->slot[i].args);
	}
	o->nr_slots = 0;
}
