// SPDX-License-Identifier: MIT
/* libFuzzer entry point for fuzz_one() (fuzz/harness.h); built by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_one(data, size);
}
