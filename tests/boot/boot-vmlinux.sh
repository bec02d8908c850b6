#!/usr/bin/env bash
# vmlinux through its PVH note.
IMAGE=vmlinux
. "${top_srcdir:-$(dirname "$0")/../..}/tests/boot/panic-boot.sh"
