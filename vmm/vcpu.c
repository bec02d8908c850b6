// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"

#define X86_CR0_PE	(1ULL << 0)
#define X86_CR0_ET	(1ULL << 4)
#define X86_CR0_NE	(1ULL << 5)
#define X86_CR0_PG	(1ULL << 31)
#define X86_CR4_PAE	(1ULL << 5)
#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)

#define APIC_LVT0	0x350
#define APIC_LVT1	0x360
#define APIC_MODE_NMI	0x4
#define APIC_MODE_EXTINT 0x7

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT",
	[KVM_EXIT_MMIO] = "MMIO", [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "SHUTDOWN", [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
	[KVM_EXIT_INTR] = "INTR", [KVM_EXIT_SET_TPR] = "SET_TPR",
	[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS", [KVM_EXIT_NMI] = "NMI",
	[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR", [KVM_EXIT_OSI] = "OSI",
	[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT", [KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
	[KVM_EXIT_HYPERV] = "HYPERV", [KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
	[KVM_EXIT_X86_WRMSR] = "X86_WRMSR", [KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
};

const char *vcpu_exit_name(unsigned int reason)
{
	if (reason < ARRAY_SIZE(exit_names) && exit_names[reason])
		return exit_names[reason];
	return "OTHER";
}

/* Per-vCPU: APIC ID in CPUID leaves 0x1, 0xB and 0x1F. */
static int vcpu_set_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *sup = v->vm->kvm.cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned int i;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, sup, sz);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 0x1:
			e->ebx = (e->ebx & 0x0000ffff) | (v->id << 24) |
				 (MIN(v->vm->nr_vcpus, 255u) << 16);
			if (v->vm->nr_vcpus > 1)
				e->edx |= 1u << 28;	/* HTT: the count above is valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->id;
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", v->id, strerror(errno));
	}
	free(c);
	return ret;
}

/*
 * Linux expects the BIOS to have left LINT0 in ExtINT and LINT1 in NMI
 * mode (virtual wire), so that PIC interrupts reach the CPU before it
 * programs the local APIC itself.
 */
static int vcpu_set_lint(struct vcpu *v)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		goto err;
	*lvt0 = (*lvt0 & ~0x10700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x10700u) | (APIC_MODE_NMI << 8);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		goto err;
	return 0;
err:
	pr_err("vCPU %u: LAPIC set-up: %s", v->id, strerror(errno));
	return -errno;
}

int vcpu_create(struct vm *vm, struct vcpu *v, unsigned int id)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return ret;
	}
	v->run = mmap(NULL, vm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		v->run = NULL;
		pr_err("vCPU %u: mmap kvm_run: %s", id, strerror(errno));
		return ret;
	}
	ret = vcpu_set_cpuid(v);
	if (!ret)
		ret = vcpu_set_lint(v);
	return ret;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->vm->kvm.vcpu_mmap_size);
	if (v->fd > 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment) {
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1,
		.l = code64 ? 1 : 0, .g = 1,
	};
}

int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	struct kvm_fpu fpu = { 0 };
	struct kvm_segment data;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		goto err;

	/* Keep TR and LDT from the reset state: KVM checks them on entry. */
	sregs.gdt.base = e->gdt_base;
	sregs.gdt.limit = e->gdt_limit;
	seg_flat(&data, BOOT_DS_SELECTOR, 0x3, false);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

	if (e->mode == BOOT_MODE_PVH32) {
		/* PVH: flat 32-bit protected mode, paging off. */
		seg_flat(&sregs.cs, BOOT_CS32_SELECTOR, 0xb, false);
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = e->rbx;
	} else {
		/* Boot protocol 64-bit entry: long mode, identity-mapped. */
		seg_flat(&sregs.cs, BOOT_CS_SELECTOR, 0xb, true);
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
		sregs.cr3 = e->cr3;
		sregs.cr4 = X86_CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rsi = e->rsi;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		goto err;

	regs.rip = e->rip;
	regs.rsp = e->rsp;
	regs.rflags = 0x2;	/* bit 1 is reserved-one; IF stays clear */
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		goto err;

	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		goto err;
	return 0;
err:
	pr_err("vCPU %u: boot register set-up: %s", v->id, strerror(errno));
	return -errno;
}

static void vcpu_dump(struct vcpu *v, const uint8_t *insn, size_t insn_len)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	char bytes[3 * 16 + 1] = "";
	size_t i;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		pr_err("vCPU %u: cannot read registers: %s", v->id, strerror(errno));
		return;
	}
	for (i = 0; i < insn_len && i < 15; i++)
		snprintf(bytes + 3 * i, sizeof(bytes) - 3 * i, "%02x ", insn[i]);
	fprintf(stderr,
		"tinyvmm: vCPU %u registers:\n"
		"  rip %016llx  rsp %016llx  rflags %08llx\n"
		"  rax %016llx  rbx %016llx  rcx %016llx  rdx %016llx\n"
		"  rsi %016llx  rdi %016llx  rbp %016llx\n"
		"  r8  %016llx  r9  %016llx  r10 %016llx  r11 %016llx\n"
		"  r12 %016llx  r13 %016llx  r14 %016llx  r15 %016llx\n"
		"  cr0 %016llx  cr2 %016llx  cr3 %016llx  cr4 %016llx  efer %llx\n"
		"  cs %04x base %llx l=%u db=%u  ss %04x  ds %04x\n"
		"  instruction bytes at rip: %s\n",
		v->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx,
		r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base, s.cs.l, s.cs.db,
		s.ss.selector, s.ds.selector, insn_len ? bytes : "(unavailable)");
}

/* Instruction bytes at CS:RIP, through the guest's own page tables. */
static size_t vcpu_fetch_insn(struct vcpu *v, uint8_t *buf, size_t len)
{
	struct kvm_translation tr = { 0 };
	struct kvm_regs r;
	struct kvm_sregs s;
	size_t n;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return 0;
	tr.linear_address = s.cs.base + r.rip;
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return 0;
	/* Stay within the page: the next one may not be contiguous. */
	n = MIN(len, 4096 - (tr.physical_address & 4095));
	if (gmem_read(&v->vm->mem, tr.physical_address, buf, n))
		return 0;
	return n;
}

/*
 * KVM's emulator could not execute an instruction.  On a PVM host two of
 * them are known and harmless to handle here; anything else is fatal.
 */
static bool vcpu_handle_emulation_failure(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t insn[16];
	size_t len = 0;
	enum quirk_action act;
	struct kvm_regs r;
	struct kvm_vcpu_events ev;

	if (run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		len = MIN((size_t)run->emulation_failure.insn_size, sizeof(insn));
		memcpy(insn, run->emulation_failure.insn_bytes, len);
	} else {
		len = vcpu_fetch_insn(v, insn, sizeof(insn));
	}

	act = host_quirk_for_insn(v->vm->host, v->vm->quirks, insn, len);
	if (act == QUIRK_NONE) {
		pr_err("vCPU %u: KVM could not emulate an instruction (internal error, suberror %u)",
		       v->id, run->internal.suberror);
		vcpu_dump(v, insn, len);
		return false;
	}

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
		goto err;
	r.rip += 1;	/* both cc and 9b are one byte */
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		goto err;
	if (act == QUIRK_INJECT_BP) {
		/* What the int3 would have done: #BP with RIP after the cc. */
		if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
			goto err;
		ev.exception.injected = 1;
		ev.exception.nr = 3;
		ev.exception.has_error_code = 0;
		ev.flags = 0;
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			goto err;
	}
	v->quirks_applied++;
	pr_debug("vCPU %u: PVM quirk at rip %llx: %s", v->id, r.rip - 1,
		 act == QUIRK_INJECT_BP ? "int3 -> #BP" : "fwait skipped");
	return true;
err:
	pr_err("vCPU %u: applying the PVM %s workaround: %s", v->id,
	       act == QUIRK_INJECT_BP ? "int3" : "fwait", strerror(errno));
	return false;
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	/* rep ins/outs arrive as count accesses of size bytes each. */
	for (i = 0; i < run->io.count; i++) {
		if (!io_bus_access(&v->vm->pio, run->io.port, is_write, data, run->io.size))
			pr_debug("unclaimed port %s 0x%x size %u",
				 is_write ? "write" : "read", run->io.port, run->io.size);
		data += run->io.size;
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned int len = run->mmio.len;

	/* The bus refuses lengths other than 1/2/4/8; data holds 8 bytes. */
	if (len <= sizeof(run->mmio.data) &&
	    io_bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.is_write,
			  run->mmio.data, len))
		return;
	/* Unclaimed: reads float high, writes are dropped. */
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	pr_debug("unclaimed MMIO %s 0x%llx len %u", run->mmio.is_write ? "write" : "read",
		 (unsigned long long)run->mmio.phys_addr, len);
}

static void vcpu_fatal(struct vcpu *v, const char *what)
{
	char why[96];

	pr_err("vCPU %u: %s", v->id, what);
	vcpu_dump(v, NULL, 0);
	snprintf(why, sizeof(why), "vCPU %u: %s", v->id, what);
	vm_request_stop(v->vm, EXIT_GUEST_CRASH, why);
}

/* Returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char msg[96];

	if (run->exit_reason < VM_EXIT_REASONS)
		v->exits[run->exit_reason]++;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; kept for completeness. */
		vm_request_stop(v->vm, EXIT_GUEST_DONE, "guest halted");
		return false;
	case KVM_EXIT_SHUTDOWN:
		vm_request_stop(v->vm, EXIT_GUEST_DONE, "guest reset (triple fault)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_stop(v->vm, EXIT_GUEST_DONE, "guest powered off");
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_stop(v->vm, EXIT_GUEST_DONE, "guest reset");
			return false;
		default:
			snprintf(msg, sizeof(msg), "system event %u", run->system_event.type);
			vcpu_fatal(v, msg);
			return false;
		}
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
		    vcpu_handle_emulation_failure(v))
			return true;
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			vm_request_stop(v->vm, EXIT_GUEST_CRASH, "emulation failure");
			return false;
		}
		snprintf(msg, sizeof(msg), "KVM internal error, suberror %u", run->internal.suberror);
		vcpu_fatal(v, msg);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(msg, sizeof(msg), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fatal(v, msg);
		return false;
	default:
		snprintf(msg, sizeof(msg), "unexpected exit %s (%u)",
			 vcpu_exit_name(run->exit_reason), run->exit_reason);
		vcpu_fatal(v, msg);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);

	/* SIGUSR1 is the kick: it only has to interrupt KVM_RUN. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	if (v->id == 0)
		__atomic_store_n(&v->vm->t_first_run_ns, vm_now_ns(), __ATOMIC_RELEASE);
	while (!vm_stopping(v->vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			pr_err("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(v->vm, EXIT_GUEST_CRASH, "KVM_RUN failed");
			break;
		}
		if (!vcpu_handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret) {
		pr_err("vCPU %u: cannot start thread: %s", v->id, strerror(ret));
		return -ret;
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/*
	 * immediate_exit covers the window between the stop check and
	 * KVM_RUN; the signal covers a vCPU already inside KVM_RUN.
	 */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, SIGUSR1);
}
