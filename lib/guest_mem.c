// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/guest_mem.h"
#include "lib/util.h"

int gmem_init(struct guest_mem *gm, uint64_t ram_size)
{
	uint64_t low, high;
	unsigned int i;

	memset(gm, 0, sizeof(*gm));
	if (ram_size == 0 || ram_size % 4096)
		return -EINVAL;

	low = MIN(ram_size, GMEM_32BIT_GAP_START);
	high = ram_size - low;

	gm->region[0].gpa = 0;
	gm->region[0].size = low;
	gm->nr_regions = 1;
	if (high) {
		gm->region[1].gpa = GMEM_4G;
		gm->region[1].size = high;
		gm->nr_regions = 2;
	}

	for (i = 0; i < gm->nr_regions; i++) {
		void *p = mmap(NULL, gm->region[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			int err = -errno;

			gmem_free(gm);
			return err;
		}
		/* Guest RAM is better backed by huge pages where the host allows. */
		madvise(p, gm->region[i].size, MADV_HUGEPAGE);
		gm->region[i].hva = p;
	}
	gm->ram_size = ram_size;
	return 0;
}

void gmem_free(struct guest_mem *gm)
{
	unsigned int i;

	for (i = 0; i < gm->nr_regions; i++)
		if (gm->region[i].hva)
			munmap(gm->region[i].hva, gm->region[i].size);
	memset(gm, 0, sizeof(*gm));
}

void *gmem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < gm->nr_regions; i++) {
		const struct gmem_region *r = &gm->region[i];

		/* Written so that no sum can wrap: gpa+len may be 2^64. */
		if (gpa < r->gpa || gpa - r->gpa > r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	void *p = gmem_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *p = gmem_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int gmem_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gmem_ptr(gm, gpa, len);
	uintptr_t start, end;

	if (!p)
		return -EFAULT;
	start = ALIGN_UP((uintptr_t)p, 4096);
	end = ALIGN_DOWN((uintptr_t)p + len, 4096);
	if (start >= end || madvise((void *)start, end - start, MADV_DONTNEED)) {
		memset(p, 0, len);
		return 0;
	}
	memset(p, 0, start - (uintptr_t)p);
	memset((void *)end, 0, (uintptr_t)p + len - end);
	return 0;
}

uint64_t gmem_low_end(const struct guest_mem *gm)
{
	return gm->nr_regions ? gm->region[0].size : 0;
}
