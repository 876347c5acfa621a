"""PyTorch's CUDA caching allocator, as far as the bytes it holds for a sequence of allocations go.

`torch.cuda.memory_allocated()` counts the blocks the allocator hands out, not the bytes asked for: every request is
rounded up to 512 bytes, and a block carved from a cached segment keeps its whole remainder when splitting it would
leave too little (c10/cuda/CUDACachingAllocator.cpp, the constants below and `round_size`, `get_allocation_size`,
`should_split`, `get_free_block`'s best fit; PyTorch 2.x with the default PYTORCH_CUDA_ALLOC_CONF). So a model whose
tensors are allocated one by one (built on the GPU tensor by tensor, or loaded on the CPU and moved with
`.to("cuda")`) holds more than its bytes: a 15.2 MiB matrix gets a 16 MiB segment of its own, whose last 0.8 MiB is
under the 1 MiB a split needs, so it is allocated too. transformers' `from_pretrained` onto a device does not pay
this: its `caching_allocator_warmup` (modeling_utils.py) allocates and frees one block of the parameters' bytes
first, and the parameters are then split out of it.

Checked byte for byte against the allocator on an H200 (torch 2.11, validation/own-h200/allocator-blocks.jsonl:
ten models, both ways of loading, in the order tools/probe_allocator.py recorded), e.g. Gemma-3-1B built tensor by
tensor: 2,052,623,360 bytes allocated for 1,999,773,954 asked for (+52.8 MB, 2.6%).
"""

from __future__ import annotations

import bisect
from typing import Iterable

# c10/cuda/CUDACachingAllocator.cpp (c10/core/AllocatorConfig.h in later releases)
MIN_BLOCK = 512  # kMinBlockSize: all sizes are rounded to at least 512 bytes
SMALL_SIZE = 1 << 20  # kSmallSize: the largest "small" allocation is 1 MiB
SMALL_BUFFER = 2 << 20  # kSmallBuffer: "small" allocations are packed in 2 MiB segments
LARGE_BUFFER = 20 << 20  # kLargeBuffer: allocations between 1 and 10 MiB may be packed in 20 MiB segments
MIN_LARGE_ALLOC = 10 << 20  # kMinLargeAlloc
ROUND_LARGE = 2 << 20  # kRoundLarge: larger segments are rounded up to 2 MiB


def round_size(size: int) -> int:
    """`round_size`: the block a request of `size` bytes needs at least."""
    return MIN_BLOCK if size < MIN_BLOCK else MIN_BLOCK * -(-size // MIN_BLOCK)


def segment_size(size: int) -> int:
    """`get_allocation_size`: the segment cudaMalloc'd for a (rounded) request no cached block can hold."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return ROUND_LARGE * -(-size // ROUND_LARGE)


class CachingAllocator:
    """The allocator's bookkeeping for one device and one stream: two pools of free blocks (small: requests up to
    1 MiB; large: the rest), best fit by size then address, a block split when what is left is worth keeping (small
    pool: at least 512 bytes; large pool: more than 1 MiB), freed blocks merged with free neighbours of their
    segment. `allocated`, `requested` and `reserved` follow memory_allocated(), the requested_bytes stat and
    memory_reserved()."""

    def __init__(self) -> None:
        self._free: dict[bool, list[tuple[int, int]]] = {True: [], False: []}  # small? -> sorted (size, address)
        self._blocks: dict[int, list] = {}  # address -> [size, requested or None when free, small, segment end]
        self._next = 0
        self.allocated = self.requested = self.reserved = self.segments = 0

    def malloc(self, size: int) -> int:
        """Allocate `size` bytes; returns the block's address (to `free` it)."""
        rounded = round_size(size)
        small = rounded <= SMALL_SIZE
        pool = self._free[small]
        i = bisect.bisect_left(pool, (rounded, -1))
        if i < len(pool):
            block_size, address = pool.pop(i)
            end = self._blocks[address][3]
        else:
            block_size, address = segment_size(rounded), self._next
            end = address + block_size
            self._next = end
            self.reserved += block_size
            self.segments += 1
        rest = block_size - rounded
        if rest >= MIN_BLOCK if small else rest > SMALL_SIZE:
            self._blocks[address + rounded] = [rest, None, small, end]
            bisect.insort(pool, (rest, address + rounded))
            block_size = rounded
        self._blocks[address] = [block_size, size, small, end]
        self.allocated += block_size
        self.requested += size
        return address

    def free(self, address: int) -> None:
        block = self._blocks[address]
        size, asked, small, end = block
        self.allocated -= size
        self.requested -= asked
        block[1] = None
        pool = self._free[small]
        after = self._blocks.get(address + size)
        if after is not None and after[1] is None and after[3] == end:  # merge with the free block after it
            pool.remove((after[0], address + size))
            del self._blocks[address + size]
            block[0] = size = size + after[0]
        before = next(((a, b) for a, b in self._blocks.items() if a + b[0] == address and b[1] is None
                       and b[3] == end), None)
        if before is not None:  # and with the one before it
            a, b = before
            pool.remove((b[0], a))
            del self._blocks[address]
            b[0] += size
            address, size = a, b[0]
        bisect.insort(pool, (size, address))


def allocated_bytes(sizes: Iterable[int], warmup: int | None = None) -> CachingAllocator:
    """The allocator after allocating `sizes` in order, from empty; `warmup`: first allocate and free a block of
    that many bytes (transformers' caching_allocator_warmup: the parameters' bytes, as fp16 elements)."""
    allocator = CachingAllocator()
    if warmup:
        allocator.free(allocator.malloc(warmup))
    for size in sizes:
        allocator.malloc(size)
    return allocator
