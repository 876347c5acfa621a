"""hfvram.estimate.allocator against PyTorch's caching allocator as measured on an H200 (torch 2.11,
validation/own-h200/allocator-blocks.jsonl, tools/probe_allocator.py): ten models built tensor by tensor in the
order validation/own-h200/built-tensors.jsonl.gz recorded, and the same after transformers' warm-up block."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hfvram.estimate.allocator import CachingAllocator, allocated_bytes, round_size, segment_size

OWN = Path(__file__).resolve().parent.parent / "validation" / "own-h200"
MiB = 1 << 20


def _orders() -> dict[str, list]:
    with gzip.open(OWN / "built-tensors.jsonl.gz", "rt") as f:
        return {e["model"]: e["tensors"] for e in map(json.loads, f)}


MEASURED = [json.loads(line) for line in (OWN / "allocator-blocks.jsonl").read_text().splitlines()]


def test_the_measurements_cover_both_ways_of_loading():
    assert len(MEASURED) == 20
    assert {m["variant"] for m in MEASURED} == {"per_tensor", "warmup"}
    assert len({m["model"] for m in MEASURED}) == 10


@pytest.mark.parametrize("m", MEASURED, ids=lambda m: f"{m['model']}-{m['variant']}")
def test_allocated_requested_reserved_and_segments_to_the_byte(m):
    tensors = _orders()[m["model"]]
    warmup = None
    if m["variant"] == "warmup":  # torch.empty(byte_count // 2, dtype=float16): the parameters' bytes, even
        warmup = sum(b for kind, _, b in tensors if kind == "p") // 2 * 2
    a = allocated_bytes([b for _, _, b in tensors], warmup)
    assert (a.allocated, a.requested, a.reserved, a.segments) == (
        m["after"]["allocated"], m["after"]["requested"], m["after"]["reserved"], m["after"]["segments"])


def test_tensor_by_tensor_costs_what_the_warm_up_saves():
    by = {(m["model"], m["variant"]): m["after"] for m in MEASURED}
    gemma = by[("google/gemma-3-1b-it", "per_tensor")]
    assert gemma["allocated"] - gemma["requested"] == 52_849_406  # 78 MLP matrices of 15.19 MiB in 16 MiB segments
    assert by[("google/gemma-3-1b-it", "warmup")]["allocated"] - gemma["requested"] == 27_390
    deepseek = by[("deepseek-ai/DeepSeek-V2-Lite", "per_tensor")]
    assert deepseek["allocated"] - deepseek["requested"] == 81_789_696


def test_the_rules():
    assert round_size(1) == 512 and round_size(513) == 1024
    assert segment_size(512) == 2 * MiB and segment_size(1 * MiB) == 2 * MiB
    assert segment_size(1 * MiB + 512) == 20 * MiB and segment_size(10 * MiB) == 10 * MiB
    assert segment_size(15 * MiB + 1) == 16 * MiB
    a = CachingAllocator()
    a.malloc(15 * MiB + 196608)  # 0.8125 MiB left over: not worth a split, allocated with the block
    assert (a.allocated, a.reserved) == (16 * MiB, 16 * MiB)
    a.malloc(11 * MiB)  # a fresh 12 MiB segment, split: the 1 MiB left is not more than 1 MiB, so it stays
    assert (a.allocated, a.reserved, a.segments) == (28 * MiB, 28 * MiB, 2)
    # a freed block merges with its free neighbours and is split again
    b = CachingAllocator()
    x = b.malloc(100 * MiB)
    b.free(x)
    for _ in range(4):
        b.malloc(25 * MiB)
    assert (b.allocated, b.reserved, b.segments) == (100 * MiB, 100 * MiB, 1)
    y, z = b.malloc(3 * MiB), b.malloc(3 * MiB)
    b.free(y)
    b.free(z)
    assert b._free[False] == [(20 * MiB, 100 * MiB)]


def test_make_accuracy_adds_the_rounding_of_our_tensor_by_tensor_builds():
    from hfvram.accuracy import _build_rounding_bytes

    case = {"model": "google/gemma-3-1b-it", "settings": {"weights": "random (from_config)"},
            "quantity": "peak_allocated_bytes"}
    # the rounding of the recorded order (parameters and buffers), as measured
    assert _build_rounding_bytes(case, "transformers") == 52_849_406
    # what the process holds: the segments (2,059,403,264 reserved for 1,999,773,954 asked)
    assert _build_rounding_bytes({**case, "quantity": "total_used_bytes"}, "transformers") == 59_629_310
    assert _build_rounding_bytes({**case, "settings": {}}, "transformers") == 0  # a published from_pretrained run
    assert _build_rounding_bytes(case, "vllm") == 0
