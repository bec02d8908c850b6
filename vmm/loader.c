// SPDX-License-Identifier: MIT
/*
 * Kernel loading entry point: check what the user gave us, tell a vmlinux
 * from a bzImage by its first bytes and hand over to the format's loader.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define BZ_BOOT_FLAG_OFF	0x1fe
#define BZ_HEADER_OFF		0x202
#define BZ_DETECT_LEN		(BZ_HEADER_OFF + 4)
#define KERNEL_PROBE_LEN	0x400	/* covers the whole setup header */

enum kernel_format kernel_detect(const uint8_t *buf, size_t len)
{
	if (!buf)
		return KERNEL_FORMAT_UNKNOWN;
	if (len >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG))
		return KERNEL_FORMAT_ELF;
	if (len >= BZ_DETECT_LEN &&
	    buf[BZ_BOOT_FLAG_OFF] == 0x55 && buf[BZ_BOOT_FLAG_OFF + 1] == 0xaa &&
	    !memcmp(buf + BZ_HEADER_OFF, "HdrS", 4))
		return KERNEL_FORMAT_BZIMAGE;
	return KERNEL_FORMAT_UNKNOWN;
}

static int not_a_kernel(const char *path)
{
	pr_err("'%s' is not a Linux kernel (neither an ELF vmlinux nor a bzImage)", path);
	return -ENOEXEC;
}

int kernel_load(struct guest_mem *gm, const struct boot_config *cfg,
		struct boot_entry *entry)
{
	const char *path = cfg->kernel_path;
	uint8_t buf[KERNEL_PROBE_LEN];
	struct stat st;
	ssize_t n;
	int fd, ret;

	if (cfg->cmdline && strlen(cfg->cmdline) >= BOOT_CMDLINE_MAX) {
		pr_err("kernel command line is %zu bytes; at most %d fit (--cmdline)",
		       strlen(cfg->cmdline), BOOT_CMDLINE_MAX - 1);
		return -E2BIG;
	}

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("cannot open kernel '%s': %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("cannot open kernel '%s': %s", path, strerror(errno));
		goto out;
	}
	/* A directory reads as EISDIR, a device as anything: neither is a kernel. */
	if (!S_ISREG(st.st_mode)) {
		ret = not_a_kernel(path);
		goto out;
	}
	n = pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		ret = n;
		pr_err("cannot read kernel '%s': %s", path, strerror(-ret));
		goto out;
	}

	/* The loaders write the command line: bzImage has its own limit. */
	switch (kernel_detect(buf, n)) {
	case KERNEL_FORMAT_ELF:
		ret = elf_load_pvh(gm, fd, path, cfg, entry);
		break;
	case KERNEL_FORMAT_BZIMAGE:
		ret = bzimage_load(gm, fd, path, cfg, entry);
		break;
	default:
		ret = not_a_kernel(path);
		break;
	}
out:
	close(fd);
	return ret;
}
