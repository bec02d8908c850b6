/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_HOST_H
#define TINYVMM_HOST_H

/*
 * What kind of KVM host this is, and the workarounds a PVM host needs.
 *
 * On a PVM host (kvm_pvm, no VT-x/AMD-V) an ordinary guest runs in KVM's
 * instruction emulator, which cannot execute some instructions Linux uses.
 * tinyvmm then appends a guest cmdline that keeps Linux away from them and
 * steps over the two it meets anyway (int3 in the selftest, fwait).  On a
 * VT-x or AMD-V host none of this is applied: the quirk hooks return
 * "nothing to do" whatever the instruction.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum host_kind {
	HOST_UNKNOWN = 0,	/* treated like hardware: no quirks */
	HOST_VMX,
	HOST_SVM,
	HOST_PVM,
};

/* Always appended on a PVM host: Linux's own switches for these. */
#define PVM_GUEST_FLAGS		"nosmap nosmep nopku"
/*
 * Linux 6.1 copies the clearcpuid= value into a 128-byte buffer
 * (cpu_parse_early_param) and silently cuts the rest: the merged list
 * must fit in 127 characters.
 */
#define CLEARCPUID_MAX		127

/* root: "/" normally; tests point it at a fake /sys + /proc tree. */
enum host_kind host_detect(const char *root);
const char *host_kind_name(enum host_kind kind);
/* "vmx", "svm", "pvm" or "unknown": what --host-kind takes and prints. */
const char *host_kind_word(enum host_kind kind);
/* HOST_* for a word above, or -1. */
int host_kind_parse(const char *word);

/*
 * The features a PVM host's guest must not use, as clearcpuid= takes
 * them: "154,151,..." (word * 32 + bit from Linux's cpufeatures.h).
 * Numbers work whether or not the guest kernel has
 * CONFIG_X86_FEATURE_NAMES; with it, Linux prints their names anyway.
 */
const char *host_pvm_clearcpuid(void);

/* Where the composed cmdline carries what tinyvmm added (for the log). */
struct host_cmdline_added {
	size_t off, len;
};

/*
 * user, and on a PVM host with quirks on PVM_GUEST_FLAGS and one
 * clearcpuid= that merges the user's (Linux reads only the last one)
 * with host_pvm_clearcpuid(), before any "--" (what follows it goes to
 * init).  Returns 1 if something was added, 0 if not, -E2BIG when the
 * merged clearcpuid= exceeds CLEARCPUID_MAX, -ENAMETOOLONG when the
 * result does not fit in outlen.  added may be NULL.
 */
int host_cmdline_compose(char *out, size_t outlen, const char *user,
			 enum host_kind kind, bool quirks, struct host_cmdline_added *added);

enum quirk_action {
	QUIRK_NONE = 0,		/* a real failure: report it */
	QUIRK_INJECT_BP,	/* int3: skip it and inject #BP (vector 3) */
	QUIRK_SKIP,		/* fwait with no x87 exception pending: a no-op */
};

/* What to do about an emulation failure on insn (len bytes at RIP). */
enum quirk_action host_quirk_for_insn(enum host_kind kind, bool quirks,
				      const uint8_t *insn, size_t len);

#endif
