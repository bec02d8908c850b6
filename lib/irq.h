/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_IRQ_H
#define TINYVMM_IRQ_H

/*
 * A device's interrupt output as the device sees it: a level it can raise
 * and lower.  The VMM wires it to KVM_IRQ_LINE; unit tests wire it to a
 * recorder.  Keeping KVM out of the devices is what lets them be tested
 * without a VM.
 */
struct irq_line {
	void (*set_level)(void *opaque, unsigned int gsi, int level);
	void *opaque;
	unsigned int gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set_level)
		l->set_level(l->opaque, l->gsi, level);
}

/*
 * How a device asks the VMM to stop the VM (reset line, debug-exit port).
 * status is the process exit status tinyvmm should end with.
 */
struct vm_stop {
	void (*request)(void *opaque, int status, const char *why);
	void *opaque;
};

static inline void vm_stop_request(const struct vm_stop *s, int status, const char *why)
{
	if (s && s->request)
		s->request(s->opaque, status, why);
}

#endif
