/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_OPTIONS_H
#define TINYVMM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PCI_MAX_SLOTS		32
#define OPT_DEFAULT_MEM		(256ULL << 20)
#define OPT_MAX_CPUS		64
#define OPT_DEFAULT_CMDLINE	"console=ttyS0 reboot=k panic=-1"

/* One "-s <slot>[:0],<device>[,<args>]" as given. */
struct slot_opt {
	unsigned int slot;
	char *device;		/* "virtio-blk" */
	char *args;		/* everything after the second comma, or NULL */
};

struct options {
	uint64_t mem_size;
	unsigned int nr_cpus;
	const char *kernel;
	const char *initrd;
	const char *cmdline;	/* NULL: OPT_DEFAULT_CMDLINE */
	bool stats;
	bool host_quirks;
	int host_kind;		/* enum host_kind, or -1: detect it */
	bool print_host_kind;
	bool seccomp;		/* false with --no-seccomp */
	bool help;
	bool version;
	struct slot_opt slot[PCI_MAX_SLOTS];
	unsigned int nr_slots;
};

/*
 * Parse argv.  Returns 0, or the exit status to end with (EXIT_USAGE for
 * an unknown option or device or a missing KERNEL, EXIT_SETUP_ERROR for a
 * bad value) after printing one line naming the culprit.
 */
int options_parse(struct options *o, int argc, char **argv);
void options_free(struct options *o);
void options_usage(FILE *f);

/* Device names -s accepts; a device's own arguments are checked by it. */
bool options_device_known(const char *name);

#endif
