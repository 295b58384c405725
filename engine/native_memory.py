"""glibc's allocator settings for the processes that train, explain and predict.

TensorFlow on a CPU allocates and frees its large tensors at every step: AlexNet's dense layers at 32 px
give 64 MB gradients, Adam's updates as many temporaries. glibc serves each allocation above its mmap
threshold (at most 32 MB) with a fresh mapping, and returns freed heap tops to the system, so every step
the kernel maps, zeroes and faults in the same memory again, 4 KB at a time: in a demo run half of the
training child's CPU time was system time (246,000 page faults a second). With transparent huge pages
for large chunks, a 32 MB mmap threshold and no trimming, AlexNet trains about twice as fast
(bench/train_throughput.py; figures in the issue notes). Memory that training frees stays with the
process until it ends, which each network's training child does (engine.training.runner).

``GLIBC_TUNABLES`` is read when a process starts, so it can only be set for the processes started after
it: the training children, preprocessing workers, Ray workers and the dashboard's server.
"""

from __future__ import annotations

import os
import sys

TUNABLES = ":".join([
    "glibc.malloc.hugetlb=1",  # madvise(MADV_HUGEPAGE) on large chunks: 2 MB pages where the kernel allows
    "glibc.malloc.mmap_threshold=33554432",  # 32 MB, glibc's maximum: smaller tensors come from the heap
    "glibc.malloc.trim_threshold=4294967296",  # keep freed heap memory for the next step
    "glibc.malloc.top_pad=268435456",  # grow the heap in steps of 256 MB, not page by page
])


def for_child_processes() -> None:
    """Give processes started from now on the settings above, unless GLIBC_TUNABLES is set already
    (the user's own choice wins). Other C libraries ignore the variable."""
    os.environ.setdefault("GLIBC_TUNABLES", TUNABLES)


def as_the_training_children() -> None:
    """Run this script with the settings the training children get: set them, unless set already, and
    start the script again (the C library reads them only at start). For benchmarks (bench/), whose
    figures must be those of a real run; without this, AlexNet measured half its real speed."""
    if "GLIBC_TUNABLES" not in os.environ:
        for_child_processes()
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])
