"""Scans across worker processes (hfvram/workers.py): results in input order and equal to one process's, a worker
that dies or fails costs only time (its items are done again in the parent), how many processes a scan starts, and
what a worker needs to rebuild the Hub source."""

from __future__ import annotations

import json
import os
import time

import pytest

from hfvram.workers import in_order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- functions the workers run (module level: a spawned worker imports this module to find them) ---------------------

def squares(parent_pid: int, die_on: int | None = None, raise_on: int | None = None):
    def fn(item: int):
        in_worker = os.getpid() != parent_pid
        if in_worker and item == die_on:
            os._exit(3)  # killed, out of memory: the process is gone without a word
        if in_worker and item == raise_on:
            raise RuntimeError("only in a worker")
        time.sleep(0.002 * (item % 5))  # finish out of order
        return (item * item, in_worker)
    return fn


def test_results_come_back_in_input_order_from_several_processes():
    out = list(in_order(range(60), squares, (os.getpid(),), processes=2, jobs=6, window=12))
    assert [v for v, _ in out] == [i * i for i in range(60)]
    assert all(in_worker for _, in_worker in out)  # nothing was done in the parent


def test_a_window_of_one_never_stalls():
    # the next item is handed out as soon as the head is yielded, even when every worker is idle by then
    import threading

    out: list = []
    t = threading.Thread(target=lambda: out.extend(in_order(range(8), squares, (os.getpid(),), processes=2, jobs=2,
                                                            window=1)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "in_order stalled"
    assert [v for v, _ in out] == [i * i for i in range(8)]


def test_a_dead_worker_costs_only_time():
    out = list(in_order(range(40), squares, (os.getpid(), 7), processes=2, jobs=4, window=8))
    assert [v for v, _ in out] == [i * i for i in range(40)]
    here = [i for i, (_, in_worker) in enumerate(out) if not in_worker]
    assert 7 in here  # redone in the parent, with whatever else the dead worker held
    assert len(here) < 40  # the other worker went on


def test_when_every_worker_dies_the_parent_does_the_rest():
    out = list(in_order(range(10), squares, (os.getpid(), 0), processes=1, jobs=2, window=4))
    assert [v for v, _ in out] == [i * i for i in range(10)]
    assert not out[0][1]


def refuses_in_a_worker(parent_pid: int):
    if os.getpid() != parent_pid:
        raise RuntimeError("cannot start here")
    return lambda item: item + 1


def test_a_worker_that_cannot_start_leaves_the_work_to_the_parent(capfd):
    assert list(in_order(range(5), refuses_in_a_worker, (os.getpid(),), processes=2, jobs=2, window=4)) == \
        [1, 2, 3, 4, 5]
    assert "Traceback" not in capfd.readouterr().err


def test_an_item_that_fails_in_a_worker_is_done_again_here():
    out = list(in_order(range(12), squares, (os.getpid(), None, 5), processes=2, jobs=4, window=6))
    assert [v for v, _ in out] == [i * i for i in range(12)]
    assert [i for i, (_, w) in enumerate(out) if not w] == [5]


def test_how_many_processes_a_scan_starts(monkeypatch):
    from hfvram import batch, workers

    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert workers.usable_cpus() == 4
    assert batch.auto_processes(500, 32) == 4
    assert batch.auto_processes(2 * batch.MODELS_PER_PROCESS, 32) == 2  # each process gets enough models
    assert batch.auto_processes(batch.MODELS_PER_PROCESS - 1, 32) == 1  # too few to pay for a second process
    assert batch.auto_processes(500, 3) == 3  # every process needs at least one of the jobs


def test_a_worker_rebuilds_the_same_source(tmp_path):
    from hfvram.sources.cache import MetadataCache
    from hfvram.sources.hub import HubSource

    hub = HubSource(token="hf_secret", endpoint="http://127.0.0.1:9", cache=MetadataCache(tmp_path, enabled=False),
                    max_workers=7, retries=1)
    copy = HubSource.from_replica(hub.replica())
    assert (copy.token, copy.endpoint, copy.cache.root, copy.cache.enabled, copy.max_workers, copy.retries) == \
        ("hf_secret", "http://127.0.0.1:9", tmp_path, False, 7, 1)
    # hooks another process cannot share: the scan keeps to threads
    assert HubSource(notice=None).replica() is None
    assert HubSource(sleep=lambda s: None).replica() is None


def test_a_worker_keeps_torch_out_when_the_command_line_does(monkeypatch, tmp_path):
    import sys

    from hfvram.batch import _plan_analyser
    from hfvram.sources.cache import MetadataCache
    from hfvram.sources.hub import HubSource

    replica = HubSource(cache=MetadataCache(tmp_path)).replica()
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    _plan_analyser(replica, [], [], False, torch_blocked=False)
    assert "torch" not in sys.modules
    fn = _plan_analyser(replica, [], [], False, torch_blocked=True)
    assert sys.modules["torch"] is None and fn.keywords["hub"].cache.root == tmp_path
    with pytest.raises(ImportError):
        import torch  # noqa: F401


def test_scan_across_processes_writes_the_rows_one_process_writes(fake_hub, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache-a"))
    ids = ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-0.5B-Instruct", "acme/missing", "mistralai/Mistral-7B-v0.1",
           "Qwen/Qwen3-8B", "tiiuae/falcon-7b-instruct"]
    listing = tmp_path / "models.txt"
    listing.write_text("\n".join(ids) + "\n")
    fake_hub.set_tokens(["hf_good"])
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    args = ["scan", str(listing), "--gpu", "L40S,H100", "--format", "jsonl", "--quiet", "--jobs", "4"]
    code2, out2, err2 = cli(args + ["--processes", "2"])
    requests_two = len(fake_hub.requests(path="^/api/models/[^/]+/[^/]+$"))  # model infos, not the sharded route
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache-b"))
    code1, out1, err1 = cli(args + ["--processes", "1"])
    assert (code2, err2) == (code1, err1) == (1, "")  # acme/missing is an error row
    assert out2 == out1
    rows = [json.loads(line) for line in out2.splitlines()]
    assert [r["model"] for r in rows if r["status"] == "error"] == ["acme/missing", "acme/missing"]
    in_rows = [r["model"] for r in rows]
    assert [m for i, m in enumerate(in_rows) if i == 0 or in_rows[i - 1] != m] == ids  # input order, each once
    assert requests_two == len(ids)  # one model-info request per model, from whichever process had it


def test_a_scan_over_processes_keeps_one_bound_on_requests_in_flight(fake_hub, tmp_path, monkeypatch):
    # The source's max_workers bounds the requests in flight for the whole scan: two processes share it (each
    # worker's source gets half) rather than each taking it whole (twice the connections, which cost CPU per request).
    import io

    from hfvram.batch import scan
    from hfvram.report.rows import Writer
    from hfvram.sources.hub import HubSource

    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    fake_hub.set_tokens(["hf_good"])
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    fake_hub.delay_s = 0.05  # long enough that requests overlap
    ids = ["meta-llama/Meta-Llama-3-8B", "Qwen/Qwen3-8B", "meta-llama/Llama-2-7b-hf", "mistralai/Mistral-7B-v0.1",
           "Qwen/Qwen2.5-7B-Instruct", "google/gemma-2-9b-it"]
    out = io.StringIO()
    summary = scan(ids, {"frameworks": ["vllm"]}, Writer("jsonl", out), hub=HubSource(max_workers=4, speculate=False),
                   jobs=8, processes=2)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["model"] for r in rows] == ids and all(r["status"] != "error" for r in rows), rows
    assert summary.analysed == len(ids)
    events = sorted([(r.start, 1) for r in fake_hub.log] + [(r.end, -1) for r in fake_hub.log])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    # each process's shards alone would fill 4 (Llama-3-8B has 4, Qwen3-8B 5): with 4 a process, 8 were in flight
    assert peak <= 4, peak
