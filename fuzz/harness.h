/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_FUZZ_HARNESS_H
#define TINYVMM_FUZZ_HARNESS_H

/*
 * Fuzz harness bodies (issue 6), shared by the libFuzzer targets
 * (fuzz/fuzz_blk.c, fuzz/fuzz_pci.c, built with clang by `make fuzz`) and
 * by tests/unit/test_fuzz_regress.c (built with the configured compiler,
 * run by `make check`), so that a stored crash replays exactly.
 *
 * Each returns 0.  A broken invariant that no sanitizer would see (a
 * buffer handed to the disk outside guest RAM, a write on a read-only
 * device, a used length larger than the writable buffers, a device
 * callback under the transport's leaf lock, ...) calls abort() after
 * one line on stderr naming it.
 */
#include <stddef.h>
#include <stdint.h>

/*
 * The request path: virtq_pop -> blk_req_handle -> virtq_push against a
 * memory disk, guest RAM and ring from data (layout in fuzz/harness.c).
 */
int fuzz_one(const uint8_t *data, size_t size);

/* The legacy register file (virtio_pci_bar_ops) over a fake device. */
int fuzz_pci_one(const uint8_t *data, size_t size);

/* Free what each harness keeps between calls (tests call them at the end). */
void fuzz_fini(void);
void fuzz_pci_fini(void);

#endif
