"""Speed figures: round trips, wall times and scan throughput against the fake Hub with a per-request delay.

    python bench/bench.py [--delay-ms 50] [--repos 500] [--jobs 1,8,32]

Every hfvram run is a subprocess (a fresh interpreter, as a user would run it) pointed at the fake Hub through
HF_ENDPOINT, with its own empty metadata cache for "cold" runs. Targets (issue 4): a cold single model in at most
3 sequential round trips, a warm run 1 request, `hfvram --help` under 0.3 s, 500 repos in under 15 s with 32 jobs,
memory flat in the number of repos.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hfvram.fakehub import FakeHub  # noqa: E402

HFVRAM = [sys.executable, "-m", "hfvram"]
TOKEN = "hf_bench"
REPOS = {
    "single-file safetensors": "Qwen/Qwen2.5-0.5B-Instruct",
    "sharded safetensors (4 shards + index)": "meta-llama/Meta-Llama-3-8B",
    "pytorch .bin only": "tiiuae/falcon-7b-instruct",
}
# Scan set: fixtures up to this many tensors. The DeepSeek/Kimi/Qwen3-235B/Qwen3-Next checkpoints (90k-140k
# tensors) cost ~0.5-1 s of CPU each to parse; they are timed on their own below.
SCAN_MAX_TENSORS = 5000


def env_for(hub: FakeHub, cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
    env.update({"HF_ENDPOINT": hub.url, "HFVRAM_CACHE": cache, "HF_HOME": os.path.join(cache, "hf"), "HF_TOKEN": TOKEN,
                "HF_HUB_DISABLE_TELEMETRY": "1"})
    return env


def timed(cmd: list[str], env: dict) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall seconds, peak RSS (KiB) and the result of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd] if os.path.exists("/usr/bin/time") else cmd,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rss = 0
    if os.path.exists("/usr/bin/time"):
        tail = proc.stderr.strip().splitlines()[-1:] or ["0"]
        rss = int(tail[0]) if tail[0].isdigit() else 0
    return wall, rss, proc


def fixture_ids(max_tensors: int) -> list[str]:
    ids = []
    for d in sorted((ROOT / "fixtures").iterdir()):
        meta = d / "repo.json"
        tables = d / "tensors.json.gz"
        if not meta.is_file() or not tables.is_file():
            continue
        count = sum(len(f["tensors"]) for f in json.loads(gzip.decompress(tables.read_bytes())).values())
        if 0 < count <= max_tensors:
            ids.append(json.loads(meta.read_text())["id"])
    return ids


def single_models(hub: FakeHub, rows: list) -> None:
    for label, repo in REPOS.items():
        with tempfile.TemporaryDirectory() as cache:
            env = env_for(hub, cache)
            for phase, extra in (("cold", []), ("warm", []), ("--offline", ["--offline"])):
                hub.reset()
                wall, rss, proc = timed([*HFVRAM, repo, "--json", *extra], env)
                if proc.returncode != 0:
                    raise SystemExit(f"{repo} {phase}: {proc.stderr.strip()}")
                rows.append((label, repo, phase, hub.count(), hub.sequential_round_trips(), wall, rss))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--repos", type=int, default=500)
    ap.add_argument("--jobs", default="1,8,32")
    args = ap.parse_args(argv)
    delay = args.delay_ms / 1000
    print(f"hfvram bench: fake Hub with {args.delay_ms:.0f} ms per request; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs\n")

    with FakeHub(ROOT / "fixtures", tokens={TOKEN}, delay_s=delay) as hub:
        # 1. one model: requests and sequential round trips, cold / warm / offline
        rows: list = []
        single_models(hub, rows)
        print("One model (`hfvram MODEL --json`, a fresh process each time)")
        print(f"  {'repo':<40} {'run':<10} {'requests':>8} {'round trips':>11} {'wall':>8} {'peak RSS':>9}")
        for label, repo, phase, count, trips, wall, rss in rows:
            print(f"  {label:<40} {phase:<10} {count:>8} {trips:>11} {wall:>7.2f}s {rss / 1024:>7.0f}MB")

        # 2. --help
        helps = []
        for _ in range(5):
            wall, _, _ = timed([*HFVRAM, "--help"], env_for(hub, tempfile.gettempdir()))
            helps.append(wall)
        help_s = statistics.median(helps)
        print(f"\n`hfvram --help`: {help_s:.3f} s (median of 5; transformers/torch imported: no)")

        # 3. scan of N synthetic repos (fixtures under new names), cold cache each time
        pool = fixture_ids(SCAN_MAX_TENSORS)
        names = []
        for i in range(args.repos):
            new = f"bench/model-{i:04d}"
            hub.add_alias(new, pool[i % len(pool)])
            names.append(new)
        scans = []
        with tempfile.TemporaryDirectory() as work:
            listing = Path(work) / "models.txt"
            for n in sorted({min(100, args.repos), args.repos}):
                listing.write_text("\n".join(names[:n]) + "\n")
                for jobs in [int(j) for j in args.jobs.split(",")]:
                    if n != args.repos and jobs != max(int(j) for j in args.jobs.split(",")):
                        continue  # the small scan only serves the memory comparison
                    cache = tempfile.mkdtemp(dir=work)
                    hub.reset()
                    wall, rss, proc = timed([*HFVRAM, "scan", str(listing), "--jobs", str(jobs), "--format", "jsonl",
                                             "-o", os.devnull, "--quiet", "--gpu", "H100"], env_for(hub, cache))
                    if proc.returncode not in (0, 1):
                        raise SystemExit(f"scan failed: {proc.stderr.strip()[-500:]}")
                    scans.append((n, jobs, wall, n / wall, rss, hub.count()))
        print(f"\nScan of synthetic repos ({len(pool)} fixtures of <= {SCAN_MAX_TENSORS} tensors under new names), "
              f"--gpu H100, all five frameworks, cold cache")
        print(f"  {'repos':>5} {'jobs':>5} {'wall':>8} {'repos/s':>8} {'peak RSS':>9} {'requests':>9}")
        for n, jobs, wall, rate, rss, count in scans:
            print(f"  {n:>5} {jobs:>5} {wall:>7.2f}s {rate:>8.1f} {rss / 1024:>7.0f}MB {count:>9}")

        # 4. the giant checkpoints alone
        giants = ["deepseek-ai/DeepSeek-V3", "moonshotai/Kimi-K2-Instruct"]
        print("\nGiant checkpoints, cold, one at a time:")
        with tempfile.TemporaryDirectory() as cache:
            for repo in giants:
                hub.reset()
                wall, rss, proc = timed([*HFVRAM, repo, "--json", "-f", "vllm"], env_for(hub, cache))
                print(f"  {repo:<32} {wall:6.2f}s {rss / 1024:6.0f}MB requests {hub.count()} "
                      f"round trips {hub.sequential_round_trips()} (exit {proc.returncode})")

    # 5. targets
    cold = [r for r in rows if r[2] == "cold"]
    warm = [r for r in rows if r[2] == "warm"]
    offline = [r for r in rows if r[2] == "--offline"]
    big = [s for s in scans if s[0] == args.repos and s[1] == 32]
    small = [s for s in scans if s[0] != args.repos]
    checks = [
        ("cold single model <= 3 sequential round trips", all(r[4] <= 3 for r in cold),
         f"max {max(r[4] for r in cold)}"),
        ("warm run = 1 request", all(r[3] == 1 for r in warm), f"{[r[3] for r in warm]}"),
        ("--offline = 0 requests", all(r[3] == 0 for r in offline), f"{[r[3] for r in offline]}"),
        ("--help < 0.3 s", help_s < 0.3, f"{help_s:.3f} s"),
    ]
    if big:
        checks.append((f"{args.repos} repos at {args.delay_ms:.0f} ms in < 15 s with 32 jobs", big[0][2] < 15,
                       f"{big[0][2]:.1f} s"))
    if big and small:
        checks.append(("memory flat in the number of repos", big[0][4] < small[0][4] * 1.25,
                       f"{small[0][4] / 1024:.0f} MB at {small[0][0]} vs {big[0][4] / 1024:.0f} MB at {big[0][0]}"))
    print("\nTargets")
    for name, ok, figure in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {figure}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
