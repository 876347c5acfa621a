"""Shared pytest fixtures. Each section is independent; add new ones in a section of their own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------------------------
# Import path: make `import hfvram` work from a plain checkout (harmless once the package is installed).
# ---------------------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------------------------------
# Revision resolution: every test asks the Hub which commit a branch names on every run (HFVRAM_REVISION_MAX_AGE=0),
# as `hfvram check` does, so that a test's request counts and its moves of a branch do not depend on how long ago
# an earlier run of the same test resolved it. The default (a resolution reused for 10 minutes) is tested in
# test_fetch.py (test_a_recent_resolution_answers_a_warm_run_without_a_request), which deletes the variable.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _revision_asked_every_run(monkeypatch):
    monkeypatch.setenv("HFVRAM_REVISION_MAX_AGE", "0")


# ---------------------------------------------------------------------------------------------------------------
# Fake Hub (hfvram/fakehub.py)
#
#   hf_isolated       empty HF_HOME in tmp, no ambient token (env or token file), for anything using huggingface_hub
#   fake_hub_factory  make(fixtures_dir=None, **FakeHub kwargs) -> started FakeHub; also points huggingface_hub's
#                     import-time constants (ENDPOINT and the /resolve/ URL template) and HF_ENDPOINT at it, so
#                     hf_hub_download(...) without endpoint= works. HfApi() instances made *before* this fixture
#                     (e.g. huggingface_hub's module-level functions) keep their old endpoint: use
#                     HfApi(endpoint=hub.url). Stopped at teardown.
#   fake_hub          a started FakeHub over the repo's fixtures/ (skips if there are none)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def hf_isolated(tmp_path, monkeypatch):
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))
    return home


@pytest.fixture
def fake_hub_factory(hf_isolated, monkeypatch):
    from huggingface_hub import constants

    from hfvram.fakehub import FakeHub

    hubs = []

    def make(fixtures_dir=None, **kwargs):
        hub = FakeHub(fixtures_dir, **kwargs).start()
        hubs.append(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


@pytest.fixture
def fake_hub(fake_hub_factory):
    from hfvram.fakehub import default_fixtures_dir

    root = default_fixtures_dir()
    if root is None or not any((p / "repo.json").is_file() for p in root.iterdir()):
        pytest.skip("no fixtures in fixtures/")
    return fake_hub_factory(root)


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI in-process
#
#   cli(argv, stdin=None) -> (exit code, stdout, stderr), through hfvram.cli.main (its one-line error handling
#   included); HFVRAM_ALLOW_TORCH keeps main() from touching sys.modules in the test process.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(capsys, monkeypatch):
    import io

    from hfvram.cli import main

    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")

    def run(argv, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


# ---------------------------------------------------------------------------------------------------------------
# Fake hardware (hfvram/hardware.py)
#
#   fake_machine  set(nvml=None|dict, rocm_smi=None|dict|str, sysctl=None|dict, sysfs=None|dict, meminfo=None|str)
#                 -> a machine hfvram.hardware detects: `nvml` is the JSON tests/fake_nvml/pynvml.py answers from
#                 (that directory goes first on sys.path, so `import pynvml` finds the test double); `rocm_smi` and
#                 `sysctl` become executables on a PATH of their own (rocm-smi prints the dict as JSON, or the
#                 string as is; sysctl -n KEY prints dict[KEY]); `sysfs` is {"card0": {"vendor": "0x1002", ...}}
#                 under a temporary /sys/class/drm; `meminfo` replaces /proc/meminfo. Detection's cache is cleared.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    import json as _json

    from hfvram import hardware

    fake_nvml_dir = str(Path(__file__).resolve().parent / "fake_nvml")
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()

    def tool(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)

    def set_machine(nvml=None, rocm_smi=None, sysctl=None, sysfs=None, meminfo=None):
        monkeypatch.setattr(hardware, "_DETECTED", None)
        monkeypatch.setenv("PATH", str(bin_dir))  # only the fake tools: no real rocm-smi, sysctl or nvidia-smi
        monkeypatch.delitem(sys.modules, "pynvml", raising=False)
        if nvml is not None:
            spec = tmp_path / "nvml.json"
            spec.write_text(_json.dumps(nvml))
            monkeypatch.setenv("HFVRAM_FAKE_NVML", str(spec))
            monkeypatch.syspath_prepend(fake_nvml_dir)
        else:  # no nvidia-ml-py installed
            monkeypatch.setitem(sys.modules, "pynvml", None)
        if rocm_smi is not None:
            out = tmp_path / "rocm-smi.out"
            out.write_text(rocm_smi if isinstance(rocm_smi, str) else _json.dumps(rocm_smi))
            tool("rocm-smi", f"import sys\nsys.stdout.write(open({str(out)!r}).read())\n")
        if sysctl is not None:
            table = tmp_path / "sysctl.json"
            table.write_text(_json.dumps(sysctl))
            tool("sysctl", "import json, sys\n"
                           f"t = json.load(open({str(table)!r}))\n"
                           "key = sys.argv[-1]\n"
                           "if key not in t:\n    sys.exit(1)\n"
                           "print(t[key])\n")
        drm = tmp_path / "drm"
        drm.mkdir(exist_ok=True)
        for card, files in (sysfs or {}).items():
            dev = drm / card / "device"
            dev.mkdir(parents=True)
            for name, text in files.items():
                (dev / name).write_text(f"{text}\n")
        monkeypatch.setattr(hardware, "SYSFS_DRM", str(drm))
        if meminfo is not None:
            path = tmp_path / "meminfo"
            path.write_text(meminfo)
            monkeypatch.setattr(hardware, "PROC_MEMINFO", str(path))
        for var in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
            monkeypatch.delenv(var, raising=False)
        return hardware

    return set_machine
