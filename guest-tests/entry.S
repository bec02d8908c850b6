/* SPDX-License-Identifier: MIT */
/*
 * Test-guest entry: tinyvmm's PVH boot starts us here in 32-bit protected
 * mode (flat segments, paging off, EBX = hvm_start_info).  Identity-map
 * the first 4 GiB with 2 MiB pages (so the IOAPIC and LAPIC are reachable),
 * enter long mode and call guest_main(start_info).
 * Also: the 64-bit GDT, and the interrupt stubs that the IDT points at.
 */
#define EFER_MSR	0xc0000080

	.section .note.pvh, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long _start
	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl	%ebx, %edi			/* kept for guest_main */
	movl	$boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs; PD entries: 2 MiB pages. */
	movl	$pdpt, %eax
	orl	$3, %eax
	movl	%eax, pml4
	movl	$pd, %eax
	orl	$3, %eax
	movl	$pdpt, %ebx
	movl	$4, %ecx
1:	movl	%eax, (%ebx)
	addl	$4096, %eax
	addl	$8, %ebx
	decl	%ecx
	jnz	1b
	movl	$pd, %ebx
	movl	$0x83, %eax			/* present, writable, 2 MiB */
	movl	$2048, %ecx
2:	movl	%eax, (%ebx)
	addl	$0x200000, %eax
	addl	$8, %ebx
	decl	%ecx
	jnz	2b

	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$0x20, %eax			/* PAE */
	movl	%eax, %cr4
	movl	$EFER_MSR, %ecx
	rdmsr
	orl	$0x100, %eax			/* LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax		/* PG | PE */
	movl	%eax, %cr0
	lgdt	gdt_ptr
	ljmp	$0x08, $long_entry

	.code64
long_entry:
	movl	$0x10, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	$boot_stack_top, %rsp
	movl	%edi, %edi			/* zero-extend start_info */
	call	guest_main
3:	cli
	hlt
	jmp	3b

/* Exceptions 0-31: push the vector, report and exit (never return). */
	.macro EXC n
	.globl exc_stub_\n
exc_stub_\n:
	movq	$\n, %rdi
	movq	(%rsp), %rsi			/* RIP (no error code) or error code */
	movq	8(%rsp), %rdx
	andq	$-16, %rsp
	call	guest_exception
	.endm
	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC \n
	.endr

	.data
	.balign 8
	.globl exc_stubs
exc_stubs:
	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_stub_\n
	.endr

	.text
/* Hardware interrupts: save the caller-saved registers, call C, iretq. */
	.macro IRQ name, fn
	.globl \name
\name:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	call	\fn
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	iretq
	.endm
	IRQ irq_stub_dev, irq_dev
	IRQ irq_stub_dev2, irq_dev2
	IRQ irq_stub_timer, irq_timer
	.globl irq_stub_spurious
irq_stub_spurious:
	iretq

	.section .rodata
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10: data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	.bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.balign 16
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
