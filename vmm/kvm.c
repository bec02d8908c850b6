// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/kvm.h"
#include "vmm/layout.h"

static const struct {
	int cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_IRQ_INJECT_STATUS, "KVM_CAP_IRQ_INJECT_STATUS", "device interrupts" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID set-up" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 VM set-up" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtqueue kicks without exits" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "interrupts without exits" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "MSI-X interrupts" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs" },
};

static int kvm_check_caps(struct kvm *kvm, unsigned int nr_cpus)
{
	size_t i;
	int n;

	for (i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			pr_err("KVM lacks %s (needed for %s)",
			       required_caps[i].name, required_caps[i].why);
			return -ENOTSUP;
		}
	}
	n = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = n > 0 ? n : 4;
	if (nr_cpus > (unsigned int)kvm->max_vcpus) {
		pr_err("-c %u: this KVM supports at most %d vCPUs", nr_cpus, kvm->max_vcpus);
		return -EINVAL;
	}
	return 0;
}

static int kvm_get_cpuid(struct kvm *kvm)
{
	int nent = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || nent >= 4096) {
			pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return -errno;
		}
		nent *= 2;
	}
}

const char *kvm_device_path(void)
{
	const char *dev = getenv("TINYVMM_KVM_DEVICE");

	return dev && *dev ? dev : KVM_DEVICE_DEFAULT;
}

int kvm_init(struct kvm *kvm, unsigned int nr_cpus)
{
	const char *dev = kvm_device_path();
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = KVM_IDENTITY_MAP_ADDR;
	int ret;

	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	kvm_irq_routes_init(&kvm->routes);

	kvm->sys_fd = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		ret = -errno;
		if (errno == ENOENT)
			pr_err("cannot open %s: %s (this host offers no KVM: enable VT-x/AMD-V or load kvm_intel, kvm_amd or kvm_pvm)",
			       dev, strerror(errno));
		else if (errno == EACCES || errno == EPERM)
			pr_err("cannot open %s: %s (add your user to the 'kvm' group)",
			       dev, strerror(errno));
		else
			pr_err("cannot open %s: %s", dev, strerror(errno));
		return ret;
	}

	ret = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		pr_err("%s: KVM API version %d, tinyvmm needs %d", dev, ret, KVM_API_VERSION);
		ret = -ENOTSUP;
		goto err;
	}
	ret = kvm_check_caps(kvm, nr_cpus);
	if (ret)
		goto err;

	kvm->vcpu_mmap_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		ret = -EINVAL;
		goto err;
	}
	ret = kvm_get_cpuid(kvm);
	if (ret)
		goto err;

	kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	if (kvm->vm_fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		goto err;
	}
	/* Intel needs these pages for real-mode emulation; both sit in the PCI hole. */
	if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		ret = -errno;
		pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto err;
	}
	if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		ret = -errno;
		pr_err("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		goto err;
	}
	if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto err;
	}
	if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		goto err;
	}
	return 0;
err:
	kvm_exit(kvm);
	return ret;
}

void kvm_exit(struct kvm *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	kvm->vm_fd = kvm->sys_fd = -1;
	kvm->cpuid = NULL;
}

int kvm_map_memory(struct kvm *kvm, const struct guest_mem *gm)
{
	unsigned int i;

	for (i = 0; i < gm->nr_regions; i++) {
		struct kvm_userspace_memory_region mr = {
			.slot = i,
			.guest_phys_addr = gm->region[i].gpa,
			.memory_size = gm->region[i].size,
			.userspace_addr = (uintptr_t)gm->region[i].hva,
		};

		if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
			int err = -errno;

			pr_err("KVM_SET_USER_MEMORY_REGION (slot %u, %llu MiB): %s",
			       i, (unsigned long long)(mr.memory_size >> 20), strerror(errno));
			return err;
		}
	}
	return 0;
}

int kvm_irq_line(struct kvm *kvm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}
