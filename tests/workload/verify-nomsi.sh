#!/usr/bin/env bash
# tests/workload/verify.sh with the guest booted pci=nomsi: the same fio verify on
# the same disks, every completion through legacy INTx (ISR read, resampling irqfd),
# and virtio_blk.poll_queues=1: each disk's second queue a poll queue.
VERIFY_NOMSI=1 . "$(dirname "$0")/verify.sh"
