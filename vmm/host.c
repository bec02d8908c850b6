// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/host.h"

static bool path_exists(const char *root, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	return access(path, F_OK) == 0;
}

#define CPU_VMX	1u
#define CPU_SVM	2u

/* vmx/svm as whole words on /proc/cpuinfo's first "flags" line; read once. */
static unsigned int cpu_virt_flags(const char *root)
{
	char path[PATH_MAX], line[8192];
	unsigned int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p, *save = NULL;

		if (strncmp(line, "flags", 5))
			continue;
		p = strchr(line, ':');
		if (!p)
			break;
		for (p = strtok_r(p + 1, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save)) {
			if (!strcmp(p, "vmx"))
				found |= CPU_VMX;
			else if (!strcmp(p, "svm"))
				found |= CPU_SVM;
		}
		break;
	}
	fclose(f);
	return found;
}

enum host_kind host_detect(const char *root)
{
	unsigned int cpu = cpu_virt_flags(root);

	/* A hardware back end decides, even if kvm_pvm is loaded beside it. */
	if (path_exists(root, "/sys/module/kvm_intel") || (cpu & CPU_VMX))
		return HOST_VMX;
	if (path_exists(root, "/sys/module/kvm_amd") || (cpu & CPU_SVM))
		return HOST_SVM;
	if (path_exists(root, "/sys/module/kvm_pvm"))
		return HOST_PVM;
	return HOST_UNKNOWN;
}

const char *host_kind_name(enum host_kind kind)
{
	switch (kind) {
	case HOST_VMX: return "VT-x";
	case HOST_SVM: return "AMD-V";
	case HOST_PVM: return "PVM (no VT-x/AMD-V)";
	default: return "unknown";
	}
}

int host_cmdline_compose(char *out, size_t outlen, const char *user,
			 enum host_kind kind, bool quirks)
{
	bool append = quirks && kind == HOST_PVM;
	int n;

	if (append)
		n = snprintf(out, outlen, "%s%s%s", user, *user ? " " : "", PVM_GUEST_CMDLINE);
	else
		n = snprintf(out, outlen, "%s", user);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return append;
}

enum quirk_action host_quirk_for_insn(enum host_kind kind, bool quirks,
				      const uint8_t *insn, size_t len)
{
	if (!quirks || kind != HOST_PVM || len == 0)
		return QUIRK_NONE;
	switch (insn[0]) {
	case 0xcc:
		return QUIRK_INJECT_BP;
	case 0x9b:
		return QUIRK_SKIP;
	default:
		return QUIRK_NONE;
	}
}
