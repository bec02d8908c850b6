#!/usr/bin/env bash
# bzImage through the x86 boot protocol, 64-bit entry.
IMAGE=bzImage
. "${top_srcdir:-$(dirname "$0")/../..}/tests/boot/panic-boot.sh"
