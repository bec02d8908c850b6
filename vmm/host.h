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

#define PVM_GUEST_CMDLINE						\
	"nosmap nosmep nopku clearcpuid=xsave,popcnt,avx,avx2,bmi1,bmi2,"	\
	"fsgsbase,rdrand,rdseed,erms,fsrm,movbe,adx,sha_ni,aes,pclmulqdq,"	\
	"rdpid,clflushopt,clwb,smap,smep,umip,pku,ospke,invpcid,pcid"

/* root: "/" normally; tests point it at a fake /sys + /proc tree. */
enum host_kind host_detect(const char *root);
const char *host_kind_name(enum host_kind kind);

/*
 * user + (on a PVM host with quirks on) " " PVM_GUEST_CMDLINE into out.
 * Returns 1 if the quirk cmdline was appended, 0 if not, -ENAMETOOLONG
 * when the result does not fit in outlen.
 */
int host_cmdline_compose(char *out, size_t outlen, const char *user,
			 enum host_kind kind, bool quirks);

enum quirk_action {
	QUIRK_NONE = 0,		/* a real failure: report it */
	QUIRK_INJECT_BP,	/* int3: skip it and inject #BP (vector 3) */
	QUIRK_SKIP,		/* fwait with no x87 exception pending: a no-op */
};

/* What to do about an emulation failure on insn (len bytes at RIP). */
enum quirk_action host_quirk_for_insn(enum host_kind kind, bool quirks,
				      const uint8_t *insn, size_t len);

#endif
