// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/efd.h"
#include "lib/util.h"
#include "vmm/virtio_kvm.h"

static int ioeventfd_set(void *opaque, uint16_t port, unsigned int n, int efd, bool assign)
{
	struct kvm *kvm = opaque;
	struct kvm_ioeventfd io = {
		.datamatch = n,
		.addr = port,
		.len = 2,	/* Linux writes the queue index with iowrite16 */
		.fd = efd,
		.flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(kvm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int err = -errno;

		pr_err("KVM_IOEVENTFD %s port 0x%x queue %u: %s",
		       assign ? "assign" : "deassign", port, n, strerror(errno));
		return err;
	}
	return 0;
}

static int ioeventfd_attach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return ioeventfd_set(opaque, port, n, efd, true);
}

static int ioeventfd_detach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return ioeventfd_set(opaque, port, n, efd, false);
}

const struct virtio_notify virtio_kvm_notify_template = {
	.attach = ioeventfd_attach,
	.detach = ioeventfd_detach,
};

static void irqfd_assert(void *opaque)
{
	struct virtio_kvm_irq *vi = opaque;
	int err;

	__atomic_add_fetch(&vi->asserts, 1, __ATOMIC_RELAXED);
	/* The pin stays up until the guest's EOI; see virtio_kvm.h. */
	err = efd_signal(vi->irq_efd);
	if (err)
		pr_warn("irqfd for GSI %u: %s", vi->gsi, strerror(-err));
}

/* Consume an EOI that KVM signalled and the main loop has not read yet. */
static bool irqfd_eoi_seen(void *opaque)
{
	struct virtio_kvm_irq *vi = opaque;

	if (!efd_drain(vi->resample_efd))
		return false;
	__atomic_add_fetch(&vi->resamples, 1, __ATOMIC_RELAXED);
	return true;
}

static void line_assert(void *opaque)
{
	struct virtio_kvm_irq *vi = opaque;

	__atomic_add_fetch(&vi->asserts, 1, __ATOMIC_RELAXED);
	kvm_irq_line(vi->kvm, vi->gsi, 1);
}

static void line_deassert(void *opaque)
{
	struct virtio_kvm_irq *vi = opaque;

	kvm_irq_line(vi->kvm, vi->gsi, 0);
}

int virtio_kvm_irq_init(struct virtio_kvm_irq *vi, struct kvm *kvm, struct virtio_pci *vp,
			bool early_eoi)
{
	struct kvm_irqfd irqfd = { 0 };
	struct virtio_irq irq;

	memset(vi, 0, sizeof(*vi));
	vi->kvm = kvm;
	vi->vp = vp;
	vi->gsi = vp->pci.gsi;
	vi->irq_efd = vi->resample_efd = -1;

	vi->use_irqfd = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE) > 0;
	if (vi->use_irqfd) {
		vi->irq_efd = efd_open();
		vi->resample_efd = efd_open();
		if (vi->irq_efd < 0 || vi->resample_efd < 0) {
			int err = vi->irq_efd < 0 ? vi->irq_efd : vi->resample_efd;

			pr_err("eventfd for GSI %u: %s", vi->gsi, strerror(-err));
			virtio_kvm_irq_exit(vi);
			return err;
		}
		irqfd.fd = vi->irq_efd;
		irqfd.gsi = vi->gsi;
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = vi->resample_efd;
		if (ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			int err = -errno;

			pr_err("KVM_IRQFD (resample) for GSI %u: %s", vi->gsi, strerror(errno));
			virtio_kvm_irq_exit(vi);
			return err;
		}
		/*
		 * With early EOIs only the main loop takes them: it must see
		 * each one to time virtio_pci_irq_recheck().
		 */
		irq = (struct virtio_irq) {
			.assert_line = irqfd_assert, .eoi_seen = early_eoi ? NULL : irqfd_eoi_seen,
			.resample = true, .early_eoi = early_eoi, .opaque = vi,
		};
	} else {
		pr_warn("KVM has no resampling irqfd: interrupts for GSI %u go through KVM_IRQ_LINE",
			vi->gsi);
		irq = (struct virtio_irq) {
			.assert_line = line_assert, .deassert_line = line_deassert, .opaque = vi,
		};
	}
	virtio_pci_set_irq(vp, &irq);
	return 0;
}

void virtio_kvm_irq_exit(struct virtio_kvm_irq *vi)
{
	if (vi->use_irqfd && vi->irq_efd >= 0) {
		struct kvm_irqfd irqfd = {
			.fd = vi->irq_efd, .gsi = vi->gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN,
		};

		ioctl(vi->kvm->vm_fd, KVM_IRQFD, &irqfd);
	}
	if (vi->irq_efd >= 0)
		close(vi->irq_efd);
	if (vi->resample_efd >= 0)
		close(vi->resample_efd);
	vi->irq_efd = vi->resample_efd = -1;
}

int virtio_kvm_irq_fd(const struct virtio_kvm_irq *vi)
{
	return vi->use_irqfd ? vi->resample_efd : -1;
}

void virtio_kvm_irq_resample(struct virtio_kvm_irq *vi)
{
	/* A completion may have taken this EOI already (irqfd_eoi_seen). */
	if (!irqfd_eoi_seen(vi))
		return;
	/* Bits set while the guest's handler ran wait for this EOI. */
	if (virtio_pci_irq_eoi(vi->vp))
		__atomic_add_fetch(&vi->reasserts, 1, __ATOMIC_RELAXED);
}

int virtio_kvm_irq_timeout(struct virtio_kvm_irq *vi, uint64_t now_ns)
{
	uint64_t due;

	if (!vi->use_irqfd || !virtio_pci_irq_owed(vi->vp)) {
		vi->owed_since_ns = 0;
		return -1;
	}
	if (!vi->owed_since_ns)
		vi->owed_since_ns = now_ns;
	due = vi->owed_since_ns + VIRTIO_KVM_OWED_MS * 1000000ULL;
	if (now_ns < due)
		return (due - now_ns + 999999) / 1000000;
	vi->owed_since_ns = 0;
	if (virtio_pci_irq_recheck(vi->vp))
		__atomic_add_fetch(&vi->reasserts, 1, __ATOMIC_RELAXED);
	return -1;
}

static void msix_send(void *opaque, unsigned int v)
{
	struct virtio_kvm_msix *vm = opaque;
	int err;

	__atomic_add_fetch(&vm->sent, 1, __ATOMIC_RELAXED);
	err = efd_signal(vm->efd[v]);
	if (err)
		pr_warn("irqfd for MSI-X GSI %d: %s", vm->gsi[v], strerror(-err));
}

static int msix_route(void *opaque, unsigned int v, uint64_t addr, uint32_t data)
{
	struct virtio_kvm_msix *vm = opaque;

	return kvm_irq_msi_route(vm->kvm, &vm->kvm->routes, vm->gsi[v], addr, data);
}

static int msix_irqfd(struct virtio_kvm_msix *vm, unsigned int v, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = vm->efd[v], .gsi = vm->gsi[v],
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->kvm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int virtio_kvm_msix_init(struct virtio_kvm_msix *vm, struct kvm *kvm, struct virtio_pci *vp)
{
	struct msix_sink sink = { .fire = msix_send, .route = msix_route, .opaque = vm };
	unsigned int v;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm = kvm;
	for (v = 0; v < MSIX_MAX_VECTORS; v++)
		vm->efd[v] = vm->gsi[v] = -1;
	for (v = 0; v < vp->msix.nr; v++, vm->nr++) {
		vm->gsi[v] = kvm_irq_msi_gsi(&kvm->routes);
		vm->efd[v] = efd_open();
		ret = vm->gsi[v] < 0 ? vm->gsi[v] : vm->efd[v] < 0 ? vm->efd[v] : msix_irqfd(vm, v, true);
		if (ret) {
			pr_err("%s: MSI-X vector %u: irqfd: %s", vp->pci.name, v, strerror(-ret));
			if (vm->efd[v] >= 0)
				close(vm->efd[v]);
			virtio_kvm_msix_exit(vm);
			return ret;
		}
	}
	virtio_pci_set_msix_sink(vp, &sink);
	return 0;
}

void virtio_kvm_msix_exit(struct virtio_kvm_msix *vm)
{
	unsigned int v;

	for (v = 0; v < vm->nr; v++) {
		msix_irqfd(vm, v, false);
		close(vm->efd[v]);
		vm->efd[v] = -1;
	}
	vm->nr = 0;
}
