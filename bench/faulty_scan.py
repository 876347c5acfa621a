"""A scan of many repos with faults injected into a share of them: every row accounted for exactly once, the right
status for each fault, memory flat, and the wall time.

    python bench/faulty_scan.py [--repos 1000] [--share 0.1] [--jobs 32] [--deadline 10]

The repos are aliases of small fixtures (up to 3,000 tensors) in the fake Hub; the scan is `hfvram scan` in a
fresh process (as a user runs it), its memory (with its worker processes') sampled from /proc while it runs. tests/test_scan_faults.py runs the
same harness.

Faults (the first `share` of the repos, round robin over these kinds; "transient" ones clear before the retries
run out, so the row must come back ok; the others must make the row an error, and only that row):
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hfvram.fakehub import FakeHub  # noqa: E402

# kind -> (what it does, row status when the scan is done)
FAULTS = {
    "429-storm": ("every request answers 429 Retry-After 100 s (beyond --max-wait)", "error"),
    "429-twice": ("two 429s with Retry-After 0.1 s, then answers", "ok"),
    "503-storm": ("every request answers 503", "error"),
    "500-once": ("one 500, then answers", "ok"),
    "drop-once": ("one connection closed without an answer", "ok"),
    "reset-header": ("the header read reset after 20 bytes, once", "ok"),
    "bad-range": ("every header read answered with other bytes (wrong Content-Range)", "error"),
    "ignore-range": ("every header read answered with the whole file (Range ignored)", "ok"),
    "trickle-config": ("config.json a byte every 0.5 s", "error"),
    "stall-info": ("the model info never answered", "error"),
    "redirect": ("every file redirected to another origin", "ok"),
    "bad-config": ("config.json with a negative num_hidden_layers", "error"),
}
__doc__ += "\n".join(f"    {k:<15} {v[0]} -> {v[1]}" for k, v in FAULTS.items()) + "\n"


def small_fixtures(max_tensors: int = 3000) -> list[str]:
    ids = []
    for d in sorted((ROOT / "fixtures").iterdir()):
        meta, tables = d / "repo.json", d / "tensors.json.gz"
        if not meta.is_file() or not tables.is_file():
            continue
        info = json.loads(meta.read_text())
        count = sum(len(f["tensors"]) for f in json.loads(gzip.decompress(tables.read_bytes())).values())
        if 0 < count <= max_tensors and not info.get("gated") and (d / "config.json").is_file():
            ids.append(info["id"])
    return ids


def arm(hub: FakeHub, repo: str, kind: str) -> None:
    quoted = repo.replace("/", "/")
    info, files = rf"^/api/models/{quoted}(/|$)", rf"^/{quoted}/resolve/"
    if kind in ("reset-header", "bad-range", "ignore-range"):
        # a sharded repo on main takes its headers from the Hub's sharded-metadata route in one request: answer it
        # with what cannot be used, so that the shards are read one by one and meet the fault
        hub.fail_next(10_000, 200, path=rf"^/api/models/{quoted}/safetensors-metadata/", body=b"{}")
    if kind == "429-storm":
        hub.rate_limit_next(10_000, retry_after=100, path=info)
    elif kind == "429-twice":
        hub.rate_limit_next(2, retry_after=0.1, path=info)
    elif kind == "503-storm":
        hub.fail_next(10_000, 503, path=info)
    elif kind == "500-once":
        hub.fail_next(1, 500, path=files + r".*config\.json$")
    elif kind == "drop-once":
        hub.drop_next(1, path=info)
    elif kind == "reset-header":
        hub.inject("reset", 1, path=files + r".*\.safetensors$", after=20)
    elif kind == "bad-range":
        hub.inject("bad-range", 10_000, path=files + r".*\.safetensors$")
    elif kind == "ignore-range":
        hub.inject("ignore-range", 10_000, path=files + r".*\.safetensors$")
    elif kind == "trickle-config":
        hub.inject("trickle", 10_000, path=files + r".*config\.json$", interval=0.5)
    elif kind == "stall-info":
        hub.inject("stall", 10_000, path=info)
    elif kind == "redirect":
        hub.inject("redirect", 10_000, path=files)
    elif kind == "bad-config":
        cfg = json.loads(hub.repo_data(repo).texts["config.json"])
        hub.set_file(repo, "config.json", json.dumps({**cfg, "num_hidden_layers": -3}))
    else:
        raise ValueError(kind)


@dataclass
class Result:
    repos: int
    faulted: dict[str, str]  # repo -> fault kind
    rows: list[dict]
    wall_s: float
    exit_code: int
    rss_kib: list[tuple[int, int]] = field(default_factory=list)  # (rows written, VmRSS KiB of the scan and its workers)
    stderr: str = ""
    processes: int = 1  # the most processes seen at once: the scan, its workers (and multiprocessing's tracker)

    @property
    def peak_kib(self) -> int:
        return max((r for _, r in self.rss_kib), default=0)

    def rss_at(self, share: float) -> int:
        """The RSS sample taken when `share` of the rows were out."""
        wanted = share * self.repos
        return next((r for n, r in self.rss_kib if n >= wanted), self.peak_kib)


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """VmRSS of a process and its children (a scan's worker processes), in KiB, and how many processes that is."""
    def rss(p: int) -> int:
        status = Path(f"/proc/{p}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))

    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    total = rss(pid)
    for child in children:
        try:
            total += rss(child)
        except (OSError, StopIteration, ValueError):
            pass  # it just ended
    return total, 1 + len(children)


def run(repos: int = 1000, share: float = 0.1, jobs: int = 32, deadline: float = 10.0, workdir: Path | None = None,
        hub: FakeHub | None = None, processes: int | None = None) -> Result:
    own = hub is None
    if own:
        hub = FakeHub(ROOT / "fixtures").start()
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    work = Path(tmp.name if tmp else workdir)
    try:
        bases = small_fixtures()
        ids = [f"scan/m{i:04d}" for i in range(repos)]
        for i, repo in enumerate(ids):
            hub.add_alias(repo, bases[i % len(bases)], gated=False, private=False)
        kinds = list(FAULTS)
        faulted = {repo: kinds[i % len(kinds)] for i, repo in enumerate(ids[: int(repos * share)])}
        for repo, kind in faulted.items():
            arm(hub, repo, kind)
        # faulted rows spread through the list, not all first
        order = ids[:]
        order.sort(key=lambda r: (int(r[-4:]) * 7919) % repos)
        models = work / "models.txt"
        models.write_text("\n".join(order) + "\n")
        out = work / "rows.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
        env.update({"HF_ENDPOINT": hub.url, "HFVRAM_CACHE": str(work / "cache"), "HF_HOME": str(work / "hf"),
                    "HF_HUB_DISABLE_TELEMETRY": "1"})
        cmd = [sys.executable, "-m", "hfvram", "scan", str(models), "-f", "vllm", "--format", "jsonl", "-o",
               str(out), "--jobs", str(jobs), "--deadline", str(deadline)]
        if processes is not None:
            cmd += ["--processes", str(processes)]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[int, int]] = []
        processes = [1]
        done = threading.Event()

        def sample():
            while not done.wait(0.25):
                try:
                    rss, count = tree_rss_kib(proc.pid)
                    processes[0] = max(processes[0], count)
                    written = out.read_bytes().count(b"\n") if out.exists() else 0
                except (OSError, StopIteration, ValueError):
                    continue
                samples.append((written, rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate(timeout=900)
        wall = time.monotonic() - start
        done.set()
        sampler.join()
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        return Result(repos=repos, faulted=faulted, rows=rows, wall_s=wall, exit_code=proc.returncode,
                      rss_kib=samples, stderr=err, processes=processes[0])
    finally:
        if own:
            hub.stop()
        if tmp:
            tmp.cleanup()


def check(result: Result) -> list[str]:
    """What is wrong with a result (empty: nothing)."""
    problems = []
    by_model: dict[str, list[dict]] = {}
    for row in result.rows:
        by_model.setdefault(row["model"], []).append(row)
    ids = {f"scan/m{i:04d}" for i in range(result.repos)}
    if set(by_model) != ids:
        problems.append(f"rows for {len(by_model)} models, {len(set(by_model) - ids)} unknown, "
                        f"{len(ids - set(by_model))} missing")
    twice = [m for m, rows in by_model.items() if len(rows) != 1]
    if twice:
        problems.append(f"{len(twice)} models with other than one row (e.g. {twice[:3]})")
    for model, rows in by_model.items():
        kind = result.faulted.get(model)
        want = FAULTS[kind][1] if kind else "ok"
        got = rows[0]["status"]
        if (want == "ok") != (got in ("ok", "does-not-fit", "unsupported")):  # answered, whatever the verdict
            problems.append(f"{model} ({kind or 'no fault'}): {got}: {rows[0].get('reason')}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--jobs", type=int, default=32)
    ap.add_argument("--processes", type=int, default=None, help="hfvram scan --processes (default: its own)")
    ap.add_argument("--deadline", type=float, default=10.0)
    args = ap.parse_args(argv)
    result = run(args.repos, args.share, args.jobs, args.deadline, processes=args.processes)
    problems = check(result)
    statuses = {}
    for row in result.rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    print(f"{result.repos} repos, {len(result.faulted)} with a fault injected ({len(FAULTS)} kinds), "
          f"{len(result.rows)} rows {statuses}, exit {result.exit_code}, wall {result.wall_s:.1f} s, peak RSS "
          f"{result.peak_kib / 1024:.0f} MiB (at 20% of rows {result.rss_at(0.2) / 1024:.0f} MiB, at 90% "
          f"{result.rss_at(0.9) / 1024:.0f} MiB; {result.processes} processes)")
    for p in problems[:20]:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
