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

static const char *const host_kind_words[] = {
	[HOST_UNKNOWN] = "unknown", [HOST_VMX] = "vmx", [HOST_SVM] = "svm", [HOST_PVM] = "pvm",
};

const char *host_kind_word(enum host_kind kind)
{
	if ((unsigned int)kind >= ARRAY_SIZE(host_kind_words))
		kind = HOST_UNKNOWN;
	return host_kind_words[kind];
}

int host_kind_parse(const char *word)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(host_kind_words); i++)
		if (!strcmp(word, host_kind_words[i]))
			return i;
	return -1;
}

/*
 * What KVM's instruction emulator cannot run, or Linux must not rely on
 * there (shared/docs/kvm-on-pvm-hosts.md); the numbers are
 * word * 32 + bit in Linux 6.1's arch/x86/include/asm/cpufeatures.h.
 * Hiding XSAVE also hides AVX and everything else built on it.
 */
static const unsigned short pvm_hidden[] = {
#define F(word, bit)	((word) * 32 + (bit))
	F(4, 26),	/* xsave */
	F(4, 23),	/* popcnt */
	F(4, 28),	/* avx */
	F(9, 5),	/* avx2 */
	F(9, 3),	/* bmi1 */
	F(9, 8),	/* bmi2 */
	F(9, 0),	/* fsgsbase */
	F(4, 30),	/* rdrand */
	F(9, 18),	/* rdseed */
	F(9, 9),	/* erms */
	F(18, 4),	/* fsrm */
	F(4, 22),	/* movbe */
	F(9, 19),	/* adx */
	F(9, 29),	/* sha_ni */
	F(4, 25),	/* aes */
	F(4, 1),	/* pclmulqdq */
	F(16, 22),	/* rdpid */
	F(9, 23),	/* clflushopt */
	F(9, 24),	/* clwb */
	F(9, 20),	/* smap */
	F(9, 7),	/* smep */
	F(16, 2),	/* umip */
	F(16, 3),	/* pku */
	F(16, 4),	/* ospke */
	F(9, 10),	/* invpcid */
	F(4, 17),	/* pcid */
#undef F
};

/* A comma-separated list of at most CLEARCPUID_MAX characters. */
struct cpuid_list {
	char s[CLEARCPUID_MAX + 1];
	size_t len;
	bool too_long;
};

/* The item at p (up to the next comma or end) in *len; the one after it. */
static const char *list_next(const char *p, const char *end, size_t *len)
{
	const char *comma = memchr(p, ',', end - p);

	*len = (comma ? comma : end) - p;
	return p + *len + 1;
}

static bool list_has(const struct cpuid_list *l, const char *item, size_t n)
{
	const char *p = l->s, *next, *end = l->s + l->len;
	size_t len;

	for (; p < end; p = next) {
		next = list_next(p, end, &len);
		if (len == n && !memcmp(p, item, n))
			return true;
	}
	return false;
}

static void list_add(struct cpuid_list *l, const char *item, size_t n)
{
	size_t need = n + (l->len ? 1 : 0);

	if (!n || list_has(l, item, n))
		return;
	if (l->len + need > CLEARCPUID_MAX) {
		l->too_long = true;
		return;
	}
	if (l->len)
		l->s[l->len++] = ',';
	memcpy(l->s + l->len, item, n);
	l->len += n;
	l->s[l->len] = '\0';
}

/* A user's value "a,b,c" (quotes dropped), item by item. */
static void list_add_all(struct cpuid_list *l, const char *v, size_t n)
{
	const char *next, *end = v + n;
	size_t len;

	for (; v < end; v = next) {
		next = list_next(v, end, &len);
		list_add(l, v, len);
	}
}

/*
 * Always by number, even where the user named the same feature: a kernel
 * without CONFIG_X86_FEATURE_NAMES ignores names.
 */
static void list_add_pvm(struct cpuid_list *l)
{
	char num[8];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pvm_hidden); i++)
		list_add(l, num, snprintf(num, sizeof(num), "%u", pvm_hidden[i]));
}

const char *host_pvm_clearcpuid(void)
{
	static struct cpuid_list l;

	if (!l.len)
		list_add_pvm(&l);
	return l.s;
}

/* The next cmdline word as Linux's next_arg() splits them (quotes keep spaces). */
static const char *next_word(const char *p, size_t *len)
{
	const char *w;
	bool quoted = false;

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	for (w = p; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ' ' || *p == '\t' || *p == '\n'))
			break;
	}
	*len = p - w;
	return w;
}

/* out += s[0..n), as a new word if word; false if it does not fit. */
static bool out_put(char *out, size_t outlen, size_t *pos, const char *s, size_t n, bool word)
{
	size_t sp = word && *pos ? 1 : 0;

	if (*pos + sp + n >= outlen)
		return false;
	if (sp)
		out[(*pos)++] = ' ';
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return true;
}

/* Copy the words before "--" except clearcpuid=, whose values go to l. */
static bool compose_user(char *out, size_t outlen, size_t *pos, const char **user,
			 struct cpuid_list *l)
{
	static const char key[] = "clearcpuid=";
	const char *w;
	size_t n;

	for (w = next_word(*user, &n); n; w = next_word(w + n, &n)) {
		const char *k = w + (*w == '"'), *v;
		size_t vn;

		if (n == 2 && !memcmp(w, "--", 2))
			break;
		if ((size_t)(w + n - k) < sizeof(key) - 1 || memcmp(k, key, sizeof(key) - 1)) {
			if (!out_put(out, outlen, pos, w, n, true))
				return false;
			continue;
		}
		v = k + sizeof(key) - 1;
		vn = w + n - v;
		/* clearcpuid="a,b" and "clearcpuid=a,b" */
		if (vn && v[0] == '"')
			v++, vn--;
		if (vn && v[vn - 1] == '"')
			vn--;
		list_add_all(l, v, vn);
	}
	*user = w;
	return true;
}

int host_cmdline_compose(char *out, size_t outlen, const char *user,
			 enum host_kind kind, bool quirks, struct host_cmdline_added *added)
{
	static const char flags[] = PVM_GUEST_FLAGS " clearcpuid=";
	struct cpuid_list l = { .len = 0 };
	const char *rest = user;
	size_t pos = 0, start;

	if (!outlen)
		return -ENAMETOOLONG;
	out[0] = '\0';
	if (!quirks || kind != HOST_PVM) {
		if (strlen(user) >= outlen)
			return -ENAMETOOLONG;
		strcpy(out, user);
		return 0;
	}
	if (!compose_user(out, outlen, &pos, &rest, &l))
		return -ENAMETOOLONG;
	list_add_pvm(&l);
	if (l.too_long)
		return -E2BIG;
	start = pos + (pos ? 1 : 0);
	if (!out_put(out, outlen, &pos, flags, sizeof(flags) - 1, true) ||
	    !out_put(out, outlen, &pos, l.s, l.len, false))
		return -ENAMETOOLONG;
	if (added)
		*added = (struct host_cmdline_added) { .off = start, .len = pos - start };
	/* "--" and what follows it, for init, unchanged. */
	if (*rest && !out_put(out, outlen, &pos, rest, strlen(rest), true))
		return -ENAMETOOLONG;
	return 1;
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
