"""Speed figures: wall times against a floor, round trips and scan throughput, against the fake Hub with a delay.

    python bench/bench.py [--delay-ms 50] [--runs 5] [--repos 500] [--jobs 1,8,32] [--baseline PATH] [--parts ...]

Every hfvram run is a subprocess (a fresh interpreter, as a user would run it) pointed at the fake Hub through
HF_ENDPOINT, with its own metadata cache: empty for "cold" runs, filled by one run before for "warm" ones.

The floor is the time Python takes to start and import click and rich, what any command line of ours must pay. It is
measured in the same run, one floor run before each measured run, so load on the machine weighs on both alike:
ratios (median wall / median floor) are what to compare across runs and machines. `--baseline PATH` measures
another checkout of hfvram (PATH/hfvram) too, each of its runs next to ours, so before and after see the same load.
Both trees are byte-compiled first, as pip does when it installs a wheel (with PYTHONDONTWRITEBYTECODE set, as on
this project's machines, a source checkout would otherwise compile every module on every run), and their records'
methods too (`python -m hfvram.record`, as `make` does after installing).

Targets (issue 10, section 4): warm (cached) and `--offline` single-model runs at most 2x the floor; cold
single-file and sharded safetensors models at most 0.6 s wall median; DeepSeek-V3 and Kimi-K2 cold at most 2 s; 500
repos in at most 8 s with 32 jobs, memory flat in the number of repos; and, from issue 4, a cold model in at most 3
sequential round trips, a warm one in 1 request (0 when the branch was resolved less than HFVRAM_REVISION_MAX_AGE
ago, the "warm" row; "warm, --refresh" asks), `--offline` in none, `hfvram --help` under 0.3 s. The wall-time
targets were set on this 2-core machine when it was lightly loaded; they are also shown scaled to that machine's floor
(see LIGHT_FLOOR_S).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hfvram.fakehub import FakeHub  # noqa: E402

TOKEN = "hf_bench"
REPOS = {
    "single-file safetensors": "Qwen/Qwen2.5-0.5B-Instruct",
    "sharded safetensors (4 shards + index)": "meta-llama/Meta-Llama-3-8B",
    "pytorch .bin only": "tiiuae/falcon-7b-instruct",
}
GIANTS = ["deepseek-ai/DeepSeek-V3", "moonshotai/Kimi-K2-Instruct"]
# Scan set: fixtures up to this many tensors. The DeepSeek/Kimi/Qwen3-235B/Qwen3-Next checkpoints (90k-140k
# tensors) are timed on their own.
SCAN_MAX_TENSORS = 5000
# The floor on this machine when the figures were taken: "today ~18x on a loaded machine: 1.7 s"
# (issue 10, section 4), i.e. 1.7 / 18 = 0.094 s. Wall times scaled by LIGHT_FLOOR_S / (this run's floor) say what
# the absolute targets (0.6 s, 2 s, 8 s), set against that machine, would read at its load.
LIGHT_FLOOR_S = 1.7 / 18
FLOOR_CMD = [sys.executable, "-c", "import click, rich"]


class Tree:
    """One checkout of hfvram to measure (its `hfvram` package first on PYTHONPATH)."""

    def __init__(self, path: Path, name: str):
        self.path = Path(path).resolve()
        self.name = name
        if not (self.path / "hfvram" / "__init__.py").is_file():
            raise SystemExit(f"{self.path}: no hfvram package there")
        # whether a warm run reuses a recent revision resolution (else every warm run asks the Hub)
        self.refreshes = '"--refresh"' in (self.path / "hfvram" / "cli.py").read_text()

    def compile(self) -> None:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(self.path / "hfvram")], check=True,
                       stdout=subprocess.DEVNULL)
        if "def compile_all" in (self.path / "hfvram" / "record.py").read_text():  # what `make` does after pip
            subprocess.run([sys.executable, "-m", "hfvram.record"], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(self.path)}, cwd=tempfile.gettempdir())

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "hfvram", *args]


def env_for(hub: FakeHub, cache: str, tree: Tree | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
    env.update({"HF_ENDPOINT": hub.url, "HFVRAM_CACHE": cache, "HF_HOME": os.path.join(cache, "hf"), "HF_TOKEN": TOKEN,
                "HF_HUB_DISABLE_TELEMETRY": "1"})
    if tree is not None:
        env["PYTHONPATH"] = str(tree.path)
    return env


def timed(cmd: list[str], env: dict) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall seconds, peak RSS (KiB) and the result of one subprocess (run from a neutral folder)."""
    time_bin = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd] if time_bin else cmd, env=env, capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    rss = 0
    if time_bin:
        tail = proc.stderr.strip().splitlines()[-1:] or ["0"]
        rss = int(tail[0]) if tail[0].isdigit() else 0
    return wall, rss, proc


class Floor:
    """Floor runs, one before each measured run."""

    def __init__(self):
        self.walls: list[float] = []

    def take(self) -> None:
        wall, _, _ = timed(FLOOR_CMD, {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))})
        self.walls.append(wall)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


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


def run_ok(tree: Tree, args: list[str], env: dict, what: str, codes=(0,)):
    wall, rss, proc = timed(tree.cmd(*args), env)
    if proc.returncode not in codes:
        raise SystemExit(f"[{tree.name}] {what}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, rss, proc


# -- the measurements -------------------------------------------------------------------------------------------------

def measure(hub: FakeHub, tree: Tree, counted: bool, row: dict, work: str, args: list[str], what: str,
            fill: list[str] | None = None) -> None:
    """One timed run of `tree` with a cache of its own (filled first by `fill`, if given), added to `row`: its wall
    time, its peak RSS and, when `counted`, the requests and sequential round trips the fake Hub saw."""
    cache = tempfile.mkdtemp(dir=work)
    env = env_for(hub, cache, tree)
    if fill:
        run_ok(tree, fill, env, f"{what} (filling the cache)")
    hub.reset()
    wall, rss, _ = run_ok(tree, args, env, what)
    row["walls"][tree.name].append(wall)
    row["rss"][tree.name] = max(row["rss"][tree.name], rss)
    if counted:
        row["requests"], row["trips"] = hub.count(), hub.sequential_round_trips()
    shutil.rmtree(cache, ignore_errors=True)


def single_models(hub: FakeHub, trees: list[Tree], floor: Floor, runs: int, work: str) -> list[dict]:
    """Per repo and phase: walls of each tree, and the requests / round trips of the first tree's last run."""
    rows = []
    for label, repo in REPOS.items():
        for phase in ("cold", "warm", "warm, --refresh", "--offline", "--offline, bundled"):
            row = {"label": label, "repo": repo, "phase": phase, "walls": {t.name: [] for t in trees},
                   "rss": {t.name: 0 for t in trees}}
            extra = ["--offline"] if phase.startswith("--offline") else ["--refresh"] if "refresh" in phase else []
            for _ in range(runs):
                floor.take()
                for tree in trees:
                    fill = [repo, "--json"] if phase in ("warm", "warm, --refresh", "--offline") else None
                    # a tree from before --refresh asks the Hub on every warm run: its plain warm run is that
                    args = [a for a in extra if a != "--refresh" or tree.refreshes]
                    measure(hub, tree, tree is trees[0], row, work, [repo, "--json", *args], f"{repo} {phase}", fill)
            rows.append(row)
    return rows


def help_runs(hub: FakeHub, trees: list[Tree], floor: Floor, runs: int) -> dict:
    walls = {t.name: [] for t in trees}
    for _ in range(runs):
        floor.take()
        for tree in trees:
            wall, _, proc = run_ok(tree, ["--help"], env_for(hub, tempfile.gettempdir(), tree), "--help")
            walls[tree.name].append(wall)
    return walls


def giant_runs(hub: FakeHub, trees: list[Tree], floor: Floor, runs: int, work: str) -> list[dict]:
    rows = []
    for repo in GIANTS:
        row = {"repo": repo, "walls": {t.name: [] for t in trees}, "rss": {t.name: 0 for t in trees}}
        for _ in range(runs):
            floor.take()
            for tree in trees:
                measure(hub, tree, tree is trees[0], row, work, [repo, "--json", "-f", "vllm"], repo)
        rows.append(row)
    return rows


def scans(hub: FakeHub, trees: list[Tree], floor: Floor, n_repos: int, jobs_list: list[int], work: str) -> list:
    pool = fixture_ids(SCAN_MAX_TENSORS)
    names = []
    for i in range(n_repos):
        new = f"bench/model-{i:04d}"
        hub.add_alias(new, pool[i % len(pool)])
        names.append(new)
    # The fake Hub reads each fixture on its first request (tables, hashes, headers), on the CPUs the scan runs on:
    # its CPU during the 500-repo scan was 2.7-2.8 s without this and 0.9-1.0 s with it (two runs each, 2026-12-04;
    # preloading all 142 takes ~2.5 s before the clock). A real Hub has its repos at hand.
    hub.preload(pool)
    listing = Path(work) / "models.txt"
    out = []
    top = max(jobs_list)
    # (repos, jobs, processes): None is the default (one per CPU for a long enough list); the target's row is also
    # run in one process, as scans ran before they were spread over processes
    plan = [(min(100, n_repos), top, None)] if n_repos > 100 else []
    plan += [(n_repos, j, None) for j in jobs_list] + [(n_repos, top, 1)]
    for n, jobs, procs in plan:
        listing.write_text("\n".join(names[:n]) + "\n")
        floor.take()
        for tree in trees:
            if tree is not trees[0] and (n, jobs, procs) != (n_repos, top, None):
                continue  # the baseline is measured where the target is
            cache = tempfile.mkdtemp(dir=work)
            hub.reset()
            extra = ["--processes", str(procs)] if procs is not None else []
            # CPU seconds: the scan's processes (children of this one, reaped by the run) and the fake Hub's threads
            # (this process, which does nothing else meanwhile): on 2 CPUs a CPU-bound scan's wall is about their sum
            # / 2, and CPU varies less than wall from run to run on a shared machine
            before, hub_before = os.times(), time.process_time()
            wall, rss, _ = run_ok(tree, ["scan", str(listing), "--jobs", str(jobs), "--format", "jsonl", "-o",
                                         os.devnull, "--quiet", "--gpu", "H100", *extra], env_for(hub, cache, tree),
                                  "scan", codes=(0, 1))
            after = os.times()
            out.append({"tree": tree.name, "repos": n, "jobs": jobs, "procs": procs, "wall": wall, "rss": rss,
                        "requests": hub.count(), "sent": sum(r.sent for r in hub.log),
                        "cpu": after.children_user + after.children_system - before.children_user
                        - before.children_system, "hub_cpu": time.process_time() - hub_before})
            shutil.rmtree(cache, ignore_errors=True)
    return out, len(pool)


# -- report -----------------------------------------------------------------------------------------------------------

def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=5, help="runs per single-model measurement (medians)")
    ap.add_argument("--giant-runs", type=int, default=3)
    ap.add_argument("--repos", type=int, default=500)
    ap.add_argument("--jobs", default="1,8,32")
    ap.add_argument("--baseline", help="another hfvram checkout, measured next to this one")
    ap.add_argument("--parts", default="singles,help,scan,giants",
                    help="what to measure (comma list of singles, help, scan, giants)")
    args = ap.parse_args(argv)
    trees = [Tree(ROOT, "this")]
    if args.baseline:
        trees.append(Tree(Path(args.baseline), "baseline"))
    for tree in trees:
        tree.compile()
    names = [t.name for t in trees]
    print(f"hfvram bench: fake Hub with {args.delay_ms:.0f} ms per request; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; trees: "
          + ", ".join(f"{t.name} = {t.path}" for t in trees) + "\n")
    floor = Floor()
    with FakeHub(ROOT / "fixtures", tokens={TOKEN}, delay_s=args.delay_ms / 1000) as hub, \
            tempfile.TemporaryDirectory() as work:
        parts = set(args.parts.split(","))
        singles = single_models(hub, trees, floor, args.runs, work) if "singles" in parts else []
        helps = help_runs(hub, trees, floor, args.runs) if "help" in parts else {}
        scan_rows, pool_size = scans(hub, trees, floor, args.repos, [int(j) for j in args.jobs.split(",")], work) \
            if "scan" in parts else ([], 0)
        giants = giant_runs(hub, trees, floor, args.giant_runs, work) if "giants" in parts else []
    f = floor.median
    scale = LIGHT_FLOOR_S / f
    print(f"Floor (`python -c 'import click, rich'`): median {f:.3f} s of {len(floor.walls)} runs (min "
          f"{min(floor.walls):.3f} s), taken between the runs below. x floor = median wall / median floor.\n")

    def cells(walls: dict) -> str:
        return "  ".join(f"{med(walls[n]):6.2f} s {med(walls[n]) / f:5.1f}x" for n in names)

    head = "  ".join(f"{n + ' (wall, x floor)':>17}" for n in names)
    if singles:
        print(f"One model (`hfvram MODEL --json`, a fresh process each time, median of {args.runs})")
        print(f"  {'repo':<40} {'run':<19} {'requests':>8} {'trips':>5}  {head}  {'peak RSS':>8}")
    for r in singles:
        print(f"  {r['label']:<40} {r['phase']:<19} {r['requests']:>8} {r['trips']:>5}  {cells(r['walls'])}  "
              f"{r['rss']['this'] / 1024:>6.0f}MB")
    if helps:
        print(f"\n`hfvram --help`: {cells(helps)} (median of {args.runs})")

    if scan_rows:
        print(f"\nScan of synthetic repos ({pool_size} fixtures of <= {SCAN_MAX_TENSORS} tensors under new names), "
              f"--gpu H100, all five frameworks, cold cache")
        print(f"  {'tree':<9} {'repos':>5} {'jobs':>5} {'processes':>9} {'wall':>8} {'repos/s':>8} {'x floor':>8} "
              f"{'peak RSS':>9} {'requests':>9} {'MB sent':>8} {'CPU':>7} {'hub CPU':>8}")
        for s in scan_rows:
            procs = "default" if s["procs"] is None else s["procs"]
            print(f"  {s['tree']:<9} {s['repos']:>5} {s['jobs']:>5} {procs:>9} {s['wall']:>7.2f}s "
                  f"{s['repos'] / s['wall']:>8.1f} {s['wall'] / f:>7.0f}x {s['rss'] / 1024:>7.0f}MB {s['requests']:>9} "
                  f"{s['sent'] / 1e6:>8.0f} {s['cpu']:>6.1f}s {s['hub_cpu']:>7.1f}s")
        print("  (peak RSS: the largest process; with worker processes each holds about that much. MB sent: what the fake"
              " Hub wrote. CPU: the scan's processes, user + system; hub CPU: the fake Hub's, on the same CPUs)")
    if giants:
        print(f"\nGiant checkpoints, cold, `-f vllm` (median of {args.giant_runs})")
        for g in giants:
            print(f"  {g['repo']:<32} {cells(g['walls'])}  {g['rss']['this'] / 1024:5.0f}MB  requests "
                  f"{g['requests']}, round trips {g['trips']}")

    # -- targets (this tree) -------------------------------------------------------------------------------------
    def this(rows, phase):
        return [r for r in rows if r["phase"] == phase]

    def ratio(r):
        return med(r["walls"]["this"]) / f

    checks = []
    if singles:
        for phase in ("warm", "--offline", "--offline, bundled"):
            worst = max(ratio(r) for r in this(singles, phase))
            checks.append((f"{phase} single model <= 2x floor", worst <= 2.0, f"worst {worst:.1f}x", None))
        # Issue 10 sets 0.6 s "for single-file and sharded repos": safetensors, whose headers are read. A .bin-only
        # repo has none, so its parameters come from its config class (transformers is imported): shown, not held
        # to it.
        cold = [r for r in this(singles, "cold") if "safetensors" in r["label"]]
        cold_worst = max(med(r["walls"]["this"]) for r in cold)
        checks.append(("cold single-file / sharded safetensors model <= 0.6 s", cold_worst <= 0.6,
                       f"worst median {cold_worst:.2f} s", cold_worst * scale <= 0.6))
        checks.append(("cold single model <= 3 sequential round trips",
                       all(r["trips"] <= 3 for r in this(singles, "cold")),
                       f"max {max(r['trips'] for r in this(singles, 'cold'))}", None))
        checks.append(("warm run = 1 request with --refresh, 0 within HFVRAM_REVISION_MAX_AGE",
                       all(r["requests"] == 1 for r in this(singles, "warm, --refresh"))
                       and all(r["requests"] == 0 for r in this(singles, "warm")),
                       f"{[r['requests'] for r in this(singles, 'warm, --refresh')]}, "
                       f"{[r['requests'] for r in this(singles, 'warm')]}", None))
        offline = [r["requests"] for r in singles if r["phase"].startswith("--off")]
        checks.append(("--offline = 0 requests", all(n == 0 for n in offline), f"{offline}", None))
    if helps:
        help_s = med(helps["this"])
        checks.append(("--help < 0.3 s", help_s < 0.3, f"{help_s:.3f} s ({help_s / f:.1f}x floor)",
                       help_s * scale < 0.3))
    if giants:
        worst = max(med(g["walls"]["this"]) for g in giants)
        checks.append(("DeepSeek-V3 / Kimi-K2 cold <= 2 s", worst <= 2.0, f"worst median {worst:.2f} s",
                       worst * scale <= 2.0))
    big = [s for s in scan_rows if s["tree"] == "this" and s["repos"] == args.repos and s["jobs"] == 32
           and s["procs"] is None]
    small = [s for s in scan_rows if s["tree"] == "this" and s["repos"] != args.repos]
    if big:
        checks.append((f"{args.repos} repos at {args.delay_ms:.0f} ms in <= 8 s with 32 jobs", big[0]["wall"] <= 8,
                       f"{big[0]['wall']:.1f} s", big[0]["wall"] * scale <= 8))
    if big and small:
        checks.append(("memory flat in the number of repos", big[0]["rss"] < small[0]["rss"] * 1.25,
                       f"{small[0]['rss'] / 1024:.0f} MB at {small[0]['repos']} vs {big[0]['rss'] / 1024:.0f} MB at "
                       f"{big[0]['repos']}", None))
    print(f"\nTargets (this tree; wall-time targets also scaled to the issue's floor of {LIGHT_FLOOR_S:.3f} s: "
          f"x {scale:.2f})")
    for name, ok, figure, scaled in checks:
        extra = "" if scaled is None else f"; scaled to the issue's floor: {'met' if scaled else 'not met'}"
        print(f"  [{'met' if ok else 'NOT MET'}] {name}: {figure}{extra}")
    if len(trees) > 1:
        print("\nThis tree against the baseline (ratio of medians, < 1 is faster)")
        for r in singles:
            b, t = med(r["walls"]["baseline"]), med(r["walls"]["this"])
            print(f"  {r['label']:<40} {r['phase']:<19} {b:6.2f} s -> {t:6.2f} s  ({b / f:5.1f}x -> {t / f:4.1f}x "
                  f"floor)")
        if helps:
            b, t = med(helps["baseline"]), med(helps["this"])
            print(f"  {'--help':<60} {b:6.2f} s -> {t:6.2f} s")
        for g in giants:
            b, t = med(g["walls"]["baseline"]), med(g["walls"]["this"])
            print(f"  {g['repo']:<60} {b:6.2f} s -> {t:6.2f} s")
        for s in (x for x in scan_rows if x["tree"] == "baseline"):
            mine = next(x for x in scan_rows if x["tree"] == "this" and (x["repos"], x["jobs"], x["procs"]) ==
                        (s["repos"], s["jobs"], s["procs"]))
            print(f"  {'scan of ' + str(s['repos']) + ' repos, ' + str(s['jobs']) + ' jobs':<60} {s['wall']:6.2f} s "
                  f"-> {mine['wall']:6.2f} s  (CPU {s['cpu']:.1f} -> {mine['cpu']:.1f} s, hub {s['hub_cpu']:.1f} -> "
                  f"{mine['hub_cpu']:.1f} s, {s['sent'] / 1e6:.0f} -> {mine['sent'] / 1e6:.0f} MB sent)")
    return 0 if all(ok for _, ok, _, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
