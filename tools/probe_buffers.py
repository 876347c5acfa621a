"""What a fixture model holds on the GPU once built (tools/measure_transformers.py `build`) beyond its parameters:
parameter bytes, buffer bytes by name, and torch.cuda.memory_allocated(), to explain a weights_bytes row above the
checkpoint's bytes. `requested` is what the tensors asked the caching allocator for, before it rounds blocks up.

    python tools/probe_buffers.py google/gemma-3-1b-it
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    import torch

    import measure_transformers as mt

    for repo in (argv or sys.argv[1:]):
        model, _ = mt.build(repo, "bf16", "cuda")
        torch.cuda.synchronize()
        params = {id(p): p.numel() * p.element_size() for p in model.parameters()}
        buffers = {}
        for name, b in model.named_buffers():
            buffers[name] = b.numel() * b.element_size()
        big = sorted(buffers.items(), key=lambda kv: -kv[1])[:10]
        stats = torch.cuda.memory_stats()
        print(json.dumps({"model": repo, "allocated": int(torch.cuda.memory_allocated()),
                          "requested": int(stats.get("requested_bytes.all.current", -1)),
                          "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
                          "parameter_bytes": sum(params.values()), "buffer_bytes": sum(buffers.values()),
                          "largest_buffers": big}))
        del model
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
