"""HTML reports (`--format html`) and the 80-column terminal table.

The page is read back the way a browser reads it: every plotted element's data attribute must equal the embedded JSON
document (the same numbers `--json` prints), unsupported engines have no bars, the file asks for nothing over the
network. Then headless Chromium (Debian's package; `.ci/run` installs it) opens the reports from file:// URLs: no
console message, the DOM it built carries the same numbers, what it laid out is drawn to scale (bar widths and point
heights proportional to the bytes), a phone-wide window does not scroll sideways, and screenshots are kept under
out/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "out" / "screenshots"
MODEL = "meta-llama/Llama-2-7b-hf"


@pytest.fixture
def hub(fake_hub_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    # meta-llama repos are gated on the Hub (and in the fixtures): the token is approved for them
    h = fake_hub_factory(ROOT / "fixtures", tokens={"hf_good": ["meta-llama/*", "google/*"]})
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    return h


# -- reading a page back -------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Every element with its attributes, its classes and the nearest ancestor's data-framework; the embedded
    JSON; and any reference to something outside the file."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.stack: list[dict] = []
        self.data_text: list[str] = []
        self.in_data = False
        self.external: list[str] = []
        self.scripts = 0
        self.feed(text)
        self.close()
        self.doc = json.loads("".join(self.data_text))

    def handle_starttag(self, tag, attrs, closed=False):
        a = {k: (v if v is not None else "") for k, v in attrs}
        fw = a.get("data-framework") or next((e["attrs"]["data-framework"] for e in reversed(self.stack)
                                              if e["attrs"].get("data-framework")), None)
        el = {"tag": tag, "attrs": a, "classes": set(a.get("class", "").split()), "framework": fw,
              "parents": [e["tag"] + "." + ".".join(sorted(e["classes"])) for e in self.stack]}
        self.elements.append(el)
        for key in ("src", "href"):
            if key in a and not a[key].startswith(("data:", "#")):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag == "script":
            self.scripts += 1
            self.in_data = a.get("id") == "hfvram-data" and a.get("type") == "application/json"
        if tag not in VOID and not closed:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs, closed=True)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break
        if tag == "script":
            self.in_data = False

    def handle_data(self, data):
        if self.in_data:
            self.data_text.append(data)

    def find(self, tag=None, cls=None, **attrs) -> list[dict]:
        out = []
        for e in self.elements:
            if tag and e["tag"] != tag or cls and cls not in e["classes"]:
                continue
            if all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(e)
        return out


def num(e: dict, key: str) -> float:
    return float(e["attrs"][key])


def check_model_page(page: Page) -> dict:
    """The charts of a one-model report against its embedded document; returns the document."""
    d = page.doc
    assert d["schema"] == "hfvram/2" and page.external == [], page.external
    est = d["estimates"]
    scale = num(page.find("div", "bars")[0], "data-scale-bytes")
    allowed = {d["gpu"]["allowed_bytes"]} if d["gpu"] else set()
    for name, e in est.items():
        row = page.find("div", "bar-row", data_framework=name)
        assert len(row) == 1, name
        segs = [x for x in page.find("rect", "seg") if x["framework"] == name]
        if not e["supported"]:  # shown as such: no bar at all, the reason in words
            assert row[0]["attrs"]["data-supported"] == "false" and segs == []
            assert not [c for c in page.find("circle") if c["framework"] == name]
            continue
        assert num(row[0], "data-per-gpu-bytes") == e["per_gpu_bytes"]
        assert num(row[0], "data-process-bytes") == e["process_bytes"]
        assert {x["attrs"]["data-component"]: int(x["attrs"]["data-bytes"]) for x in segs} == \
            {k: v for k, v in e["components"].items() if v}
        for x in segs:  # drawn to scale: viewBox width 1000 is the scale
            assert abs(num(x, "width") - num(x, "data-bytes") / scale * 1000) < 0.01
    # the lines: every point the document has, at the context it has it
    expected = {(n, d["kv_cache"]["context"]): e["per_gpu_bytes"] for n, e in est.items() if e["supported"]}
    for ctx, p in d["projections"].items():
        expected.update({(n, int(ctx)): v for n, v in p["per_gpu_bytes"].items() if v is not None})
    drawn = {(c["framework"], int(c["attrs"]["data-context"])): int(c["attrs"]["data-bytes"])
             for c in page.find("circle")}
    assert drawn == expected
    lines = page.find("line", "allowed")
    assert {int(x["attrs"]["data-bytes"]) for x in lines} == allowed
    if d["architecture"]["max_context"]:
        assert [int(x["attrs"]["data-context"]) for x in page.find("line", "max-context")] == \
            [d["architecture"]["max_context"]]
    # the fit table: one row per engine with the document's verdict and largest context
    for name, e in est.items():
        (tr,) = page.find("tr", data_framework=name)
        assert json.loads(tr["attrs"]["data-fits"]) == e["fits"]
        assert tr["attrs"]["data-max-context"] == ("" if e["max_context"] is None else str(e["max_context"]))
    return d


def check_scan_page(page: Page) -> list[dict]:
    """The fit matrix of a scan report against its embedded rows; returns the rows."""
    rows = page.doc["rows"]
    assert page.doc["schema"] == "hfvram/2" and page.doc["kind"] == "scan" and page.external == []
    cells = [c for c in page.find("td", "cell") if c["attrs"].get("data-framework")]
    by_key = {(c["attrs"]["data-model"], c["attrs"]["data-framework"], c["attrs"]["data-gpu"]): c for c in cells}
    answered = [r for r in rows if r.get("framework")]
    assert len(cells) == len(by_key) == len(answered)
    for r in answered:
        c = by_key[(r["model"], r["framework"], r["gpu"] or "")]["attrs"]
        assert c["data-status"] == r["status"]
        assert json.loads(c["data-fits"]) == r["fits"]
        assert c["data-max-context"] == str(r["max_context"] or "")
        for key in ("per_gpu_bytes", "allowed_bytes", "process_bytes"):
            assert c["data-" + key.replace("_", "-")] == ("" if r.get(key) is None else str(r[key])), key
    for r in rows:
        if not r.get("framework"):  # a model that could not be analysed: one error cell, spanning the GPUs
            assert [c for c in page.find("td", "cell", data_model=r["model"]) if c["attrs"]["data-status"] == "error"]
    return rows


# -- one model, without a browser ----------------------------------------------------------------------------------

def test_model_report_numbers_equal_the_json_document(hub, cli, tmp_path):
    report = tmp_path / "report.html"
    code, out, err = cli([MODEL, "--gpu", "RTX-4090", "--format", "html", "-o", str(report)])
    assert code == 0 and out == "" and f"wrote {report}" in err, err
    page = Page(report.read_text())
    d = check_model_page(page)
    assert page.scripts == 1  # the data; no other script
    assert set(d["estimates"]) == {"transformers", "vllm", "trtllm", "llamacpp", "exllamav2"}
    # the chart's contexts: 1K..32K by powers of two (the model's maximum, 4K, among them), all in the document
    assert sorted(int(c) for c in d["projections"]) == [1024, 2048, 8192, 16384, 32768]
    # the same analysis as --json at that context (the HTML adds projection points, nothing else)
    code, out, _ = cli([MODEL, "--gpu", "RTX-4090", "--json"])
    plain = json.loads(out)
    assert code == 0 and plain["estimates"] == d["estimates"] and plain["weights"] == d["weights"]
    assert plain["projections"]["16384"] == d["projections"]["16384"]
    # what the page says in words
    text = report.read_text()
    for words in ('<meta name="viewport"', "@media print", "@media (max-width", "Does it fit? on 1 x RTX-4090",
                  "12.55 GiB (F16 12.55 GiB; exact, from safetensors headers)", "model max 4K"):
        assert words in text, words


def test_unsupported_engines_are_shown_as_such_not_as_zero_bars(hub, cli, tmp_path):
    report = tmp_path / "mamba.html"
    code, _, err = cli(["state-spaces/mamba-2.8b-hf", "--gpu", "RTX-4090", "--format", "html", "-o", str(report)])
    assert code == 0, err
    page = Page(report.read_text())
    d = check_model_page(page)
    unsupported = [n for n, e in d["estimates"].items() if not e["supported"]]
    assert unsupported == ["trtllm", "exllamav2"]
    for name in unsupported:
        (row,) = page.find("div", "bar-row", data_framework=name)
        assert "unsupported" in row["classes"]
        (legend,) = page.find("li", "unsupported", data_framework=name)
    assert "ExLlamaV2 has no Mamba state-space layers" in report.read_text()


def test_embedded_json_cannot_end_the_script_and_round_trips():
    from hfvram.report.html import _json_script

    doc = {"notes": ["</script><script>alert(1)</script>", "a & b <!-- c -->"], "n": 1}
    text = _json_script(doc)
    assert text.count("</script>") == 1 and "<!--" not in text.split(">", 1)[1]
    page = Page(f"<html><body>{text}</body></html>")
    assert page.doc == doc


def test_chart_contexts():
    from hfvram.report.html import chart_contexts

    assert chart_contexts(4096, 4096) == [1024, 2048, 4096, 8192, 16384, 32768]
    assert chart_contexts(4096, 40960) == [1024, 2048, 4096, 8192, 16384, 32768, 40960]
    assert chart_contexts(512, None) == [512, 1024, 2048, 4096, 8192, 16384, 32768]
    assert chart_contexts(100000, 131072)[-3:] == [65536, 100000, 131072]
    assert chart_contexts(4096, 10_485_760)[-1] == 10_485_760 and len(chart_contexts(4096, 10_485_760)) == 15
    # beyond 16M tokens the maximum is marked only when it is on the chart
    assert chart_contexts(4096, 1 << 26)[-1] == 1 << 24


def test_show_format_errors_and_json_output_file(hub, cli, tmp_path):
    code, _, err = cli([MODEL, "--format", "pdf"])
    assert code == 2 and "pdf" in err
    out_file = tmp_path / "doc.json"
    code, out, err = cli([MODEL, "--json", "-o", str(out_file)])
    assert code == 0 and out == "" and json.loads(out_file.read_text())["schema"] == "hfvram/2"
    code, _, err = cli([MODEL, "--format", "html", "-o", str(tmp_path / "no" / "such" / "dir" / "r.html")])
    assert code == 2 and err.startswith("hfvram: error: cannot write") and "Traceback" not in err


# -- scans ---------------------------------------------------------------------------------------------------------

SCAN_MODELS = ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen3-8B", "state-spaces/mamba-2.8b-hf", "microsoft/phi-4",
               "google/gemma-2-9b-it", "Qwen/Qwen2.5-0.5B-Instruct", "org/does-not-exist"]


def test_scan_html_one_gpu_through_the_cli(hub, cli, tmp_path):
    models = tmp_path / "models.txt"
    models.write_text("\n".join(SCAN_MODELS) + "\n")
    report = tmp_path / "study.html"
    code, out, err = cli(["scan", str(models), "--gpu", "RTX-4090", "-f", "vllm,exllamav2", "--context", "16k",
                          "--format", "html", "-o", str(report), "--jobs", "4"])
    assert code == 1 and out == "", err  # phi-4 does not fit on 24 GiB, one model does not exist
    page = Page(report.read_text())
    rows = check_scan_page(page)
    # the same rows as --format json of the same scan
    code, out, _ = cli(["scan", str(models), "--gpu", "RTX-4090", "-f", "vllm,exllamav2", "--context", "16k",
                        "--format", "json", "--jobs", "4"])
    key = lambda r: (r["model"], r["framework"] or "")  # noqa: E731
    again = sorted(json.loads(out), key=key)
    assert {r["source"] for r in again if r["source"]} == {"cache"}  # the second scan reads the metadata cache
    assert [{**r, "source": None} for r in sorted(rows, key=key)] == [{**r, "source": None} for r in again]
    statuses = {(r["model"], r["framework"]): r["status"] for r in rows}
    assert statuses[("microsoft/phi-4", "vllm")] == "does-not-fit"
    assert statuses[("state-spaces/mamba-2.8b-hf", "exllamav2")] == "unsupported"
    assert statuses[("org/does-not-exist", None)] == "error"
    assert [e["attrs"].get("colspan") for e in page.find("td", "error", data_model="org/does-not-exist")] == ["1"]
    # an HTML report cannot be appended to
    code, _, err = cli(["scan", str(models), "--format", "html", "-o", str(report), "--resume", str(report)])
    assert code == 2 and "cannot read back" in err


def scan_rows(cli, models_file, gpus, frameworks="vllm,llamacpp") -> list[dict]:
    """One scan's rows per GPU (jsonl through the CLI), together: the rows of a several-GPU study."""
    rows = []
    for gpu in gpus:
        code, out, err = cli(["scan", str(models_file), "--gpu", gpu, "-f", frameworks, "--format", "jsonl",
                              "--jobs", "4"])
        assert code in (0, 1), err
        rows += [json.loads(line) for line in out.splitlines()]
    return rows


def test_scan_html_several_gpus(hub, cli, tmp_path):
    from hfvram.report.html import render_scan

    models = tmp_path / "models.txt"
    models.write_text("\n".join(SCAN_MODELS) + "\n")
    gpus = ["RTX-4090", "L40S", "H100-SXM"]
    rows = scan_rows(cli, models, gpus)
    page = Page(render_scan(rows))
    assert check_scan_page(page) == rows
    cells = page.find("td", "cell")
    assert {c["attrs"]["data-gpu"] for c in cells if c["attrs"].get("data-gpu")} == set(gpus)
    phi = {c["attrs"]["data-gpu"]: c["attrs"]["data-status"] for c in cells
           if c["attrs"].get("data-model") == "microsoft/phi-4" and c["attrs"].get("data-framework") == "vllm"}
    assert phi == {"RTX-4090": "does-not-fit", "L40S": "ok", "H100-SXM": "ok"}
    # the missing model: one error cell spanning the three GPU columns
    assert [e["attrs"]["colspan"] for e in page.find("td", "error", data_model="org/does-not-exist")] == ["3"]
    answered = [r for r in rows if r["framework"]]
    fit = sum(r["status"] == "ok" and r["fits"] is True for r in answered)
    short = sum(r["status"] == "does-not-fit" for r in answered)
    assert fit + short == len(answered) == 6 * 2 * 3 and short >= 2
    text = " ".join(render_scan(rows).split())
    assert (f"{len(answered)} answers (model x framework x GPU): {fit} fit, {short} do not fit; 1 model could not be "
            "analysed") in text
    assert "7 models x 3 GPUs" in text and "H100-SXM (79.18 GiB allowed)" in text


def test_scan_html_without_a_gpu(hub, cli, tmp_path):
    models = tmp_path / "models.txt"
    models.write_text("Qwen/Qwen3-8B\nstate-spaces/mamba-2.8b-hf\n")
    code, out, err = cli(["scan", str(models), "-f", "vllm,exllamav2", "--format", "html"])
    page = Page(out)
    rows = check_scan_page(page)
    assert {r["gpu"] for r in rows} == {None} and len(rows) == 4
    cells = page.find("td", "cell")
    assert {c["attrs"]["data-status"] for c in cells} == {"ok", "unsupported"}
    assert code == 1 and "4 answers (model x framework x GPU): 3 answered (no GPU given), 1 cannot run" in \
        " ".join(out.split()), err
    assert "<th>model</th><th>framework</th><th>no GPU given</th></tr>" in out  # the one column


# -- the terminal table at 80 columns ------------------------------------------------------------------------------

def test_table_fits_80_columns_and_never_cuts_a_number(hub, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    # LoRA and draft columns, tensor parallelism and a long context: the widest table there is
    code, out, err = cli([MODEL, "--gpu", "L40S:2", "--lora", "rank=64", "--draft", "Qwen/Qwen2.5-0.5B-Instruct",
                          "--context", "100000", "--batch", "4"])
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in out  # rich's mark for a cut cell
    assert "act. = activations, compute and scratch buffers" in out.replace("\n", " ")
    assert "left out at 80 columns: vs HF, other, ±" in out.replace("\n", " ")
    code, wide, _ = cli([MODEL, "--gpu", "L40S:2", "--lora", "rank=64", "--draft", "Qwen/Qwen2.5-0.5B-Instruct",
                         "--context", "100000", "--batch", "4", "--json"])
    d = json.loads(wide)
    for name, label in (("transformers", "HF"), ("vllm", "vLLM"), ("llamacpp", "llama.cpp")):
        row = next(line for line in lines if line.startswith(f"│ {label} "))
        cells = [c.strip() for c in row.strip("│").split("│")]
        e = d["estimates"][name]
        # every number whole: weights, KV, per GPU (GiB, two decimals)
        assert cells[1] == f"{e['components']['weights'] / 2**30:.2f}"
        assert cells[2] == f"{e['components']['kv_cache'] / 2**30:.2f}"
        assert f"{e['per_gpu_bytes'] / 2**30:.2f}" in cells


def test_table_at_80_columns_keeps_the_band_and_leaves_out_vs_hf(hub, cli, monkeypatch):
    """The error band column (±) is worth more at a gate than the comparison with HF Transformers: at 80 columns
    an RTX 4090 table keeps every other column and says which one it left out."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli([MODEL, "--gpu", "RTX-4090"])
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    flat = " ".join(out.split())
    for header in ("weights", "KV", "act.", "other", "±", "fits"):
        assert f" {header} " in flat, header
    assert ("act. = activations, compute and scratch buffers; other = CUDA context, CUDA graphs, memory outside "
            "PyTorch's allocator, allocator slack; ± = error band of the per-GPU memory, from held-out "
            "measurements (verdicts hold at its high end)") in flat
    assert "left out at 80 columns: vs HF (a wider terminal" in flat
    code, wide, _ = cli([MODEL, "--gpu", "RTX-4090", "--json"])
    d = json.loads(wide)
    for name, label in (("vllm", "vLLM"), ("transformers", "HF")):
        e = d["estimates"][name]
        row = next(line for line in out.splitlines() if line.startswith(f"│ {label} "))
        above, below = (e["high_bytes"] - e["per_gpu_bytes"]) / 2**30, (e["per_gpu_bytes"] - e["low_bytes"]) / 2**30
        assert f"+{above:.1f}/-{below:.1f}" in row and above > 0 and below > 0
    # a wider terminal has room for vs HF too: vLLM's per-GPU memory against HF's, as the document has it
    monkeypatch.setenv("COLUMNS", "100")
    _, out, _ = cli([MODEL, "--gpu", "RTX-4090"])
    assert re.search(r"│ vLLM .*│ +\+3% │", out) and "left out" not in out


def test_fit_columns_drops_by_priority_and_wraps_headers_first():
    from hfvram.report.table import Col, DROP_ORDER, fit_columns

    cols = [Col("framework", ["ExLlamaV2"], justify="left"), Col("weights", ["123.45"]), Col("KV", ["1.00"]),
            Col("act.", ["0.10"]), Col("other", ["0.20"]), Col("per GPU", ["124.75"]), Col("vs HF", ["+10%"]),
            Col("fits", ["yes"]), Col("max ctx", ["128K"])]
    kept, widths, dropped = fit_columns(cols, 200, DROP_ORDER)
    assert dropped == [] and widths[5] == len("per GPU")
    natural = sum(widths) + 3 * len(widths) + 1
    kept, widths, dropped = fit_columns(cols, natural - 1, DROP_ORDER)  # one cell short: headers wrap
    assert dropped == [] and widths[5] == len("124.75") and widths[8] == len("128K")
    kept, widths, dropped = fit_columns(cols, 50, DROP_ORDER)
    assert dropped[:2] == ["vs HF", "other"] and [c.header for c in kept][:1] == ["framework"]
    assert sum(widths) + 3 * len(widths) + 1 <= 50
    assert all(w >= max(len(x) for x in c.cells) for c, w in zip(kept, widths))  # no cell cut


# -- in a real browser ---------------------------------------------------------------------------------------------

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    found = os.environ.get("HFVRAM_CHROMIUM") or next(
        (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if not found:
        pytest.skip("no Chromium: `apt-get install -y chromium` (.ci/run installs it when it can; set "
                    "HFVRAM_CHROMIUM to use another)")
    return found


def run_chromium(tmp_path, *args, timeout=120) -> tuple[str, str]:
    """Chromium with the flags a closed network needs, its own profile, killed with its children on timeout."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish in {timeout} s: {' '.join(args)}")
    assert proc.returncode == 0, err[-2000:]
    return out, err


def console_messages(log: str) -> list[str]:
    """What the page wrote to the console, uncaught errors included (Chromium logs them as CONSOLE lines)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


PROBE = """<!DOCTYPE html>
<html><body style="margin:0">
<!-- test only: the report in a frame WIDTH px wide (headless windows are at least 500 px), and what the browser laid
     out there, written into this page for --dump-dom -->
<iframe id="f" src="SRC" style="width:WIDTHpx;height:3000px;border:0"></iframe>
<pre id="probe"></pre>
<script>
var f = document.getElementById('f');
function measure() {
  var d = f.contentDocument, r = d.documentElement, out = {scrollWidth: r.scrollWidth,
    innerWidth: f.contentWindow.innerWidth, segs: [], points: []};
  d.querySelectorAll('rect.seg').forEach(function (el) {
    out.segs.push([+el.getAttribute('data-bytes'), el.getBoundingClientRect().width]);
  });
  d.querySelectorAll('svg.chart circle, svg.chart line.allowed').forEach(function (el) {
    var b = el.getBoundingClientRect();
    out.points.push([+el.getAttribute('data-bytes'), b.top + b.height / 2]);
  });
  document.getElementById('probe').textContent = JSON.stringify(out);
}
f.addEventListener('load', measure);  /* the frame's file loads after this script has run */
</script></body></html>"""


def layout(tmp_path, report: Path, width: int) -> dict:
    """Sizes and positions as Chromium laid the report out in a `width`-pixel-wide frame (no console message)."""
    probe = report.parent / f"probe-{width}-{report.name}"
    probe.write_text(PROBE.replace("WIDTH", str(width)).replace("SRC", report.name))
    dom, log = run_chromium(tmp_path, "--allow-file-access-from-files", "--window-size=1300,1000", "--dump-dom",
                            probe.as_uri())
    assert console_messages(log) == []
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found and found.group(1), dom[-2000:]
    return json.loads(unescape(found.group(1)))


def read_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """Width, height, unfiltered rows and bytes per pixel of an 8-bit RGB(A) PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
    raw, stride, rows, prev, i = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if f == 2:
            line = bytearray((x + y) & 255 for x, y in zip(line, prev))
        elif f:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if f == 1:
                    line[x] = (line[x] + a) & 255
                elif f == 3:
                    line[x] = (line[x] + (a + b) // 2) & 255
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def colour_count(path: Path, hex_colour: str) -> int:
    w, h, rows, bpp = read_png(path)
    want = bytes.fromhex(hex_colour.lstrip("#"))
    return sum(1 for r in rows for i in range(0, len(r), bpp) if r[i:i + 3] == want)


def test_model_report_in_chromium(hub, cli, tmp_path):
    chromium()
    report = tmp_path / "report.html"
    code, _, err = cli([MODEL, "--gpu", "RTX-4090", "--context", "8k", "--format", "html", "-o", str(report)])
    assert code == 0, err
    # 1. the page as the browser built it: no console message, the same numbers as the document
    dom, log = run_chromium(tmp_path, "--dump-dom", report.as_uri())
    assert console_messages(log) == []
    page = Page(dom)
    d = check_model_page(page)
    assert d == Page(report.read_text()).doc
    for section in ("fit", "components", "by-context", "facts", "notes"):
        assert page.find("section", id=section), section
    # 2. what it laid out: drawn to scale, on a desktop and on a phone-wide screen without sideways scrolling
    for width in (1100, 390):
        laid = layout(tmp_path, report, width)
        assert laid["innerWidth"] == width and laid["scrollWidth"] <= width
        per_byte = [px / b for b, px in laid["segs"] if px > 20]
        assert len(per_byte) >= 5 and max(per_byte) / min(per_byte) < 1.02  # one scale for every bar
        points = laid["points"]
        assert len(points) == len(page.find("circle")) + 1  # and the allowed line
        (b0, y0), (b1, y1) = min(points), max(points)
        slope = (y1 - y0) / (b1 - b0)
        assert slope < 0  # more memory, higher on the page
        assert all(abs(y0 + (b - b0) * slope - y) < 0.6 for b, y in points)  # every point at its value
    # 3. screenshots (kept for people) and what they show: the bars' and the allowed line's colours
    SHOTS.mkdir(parents=True, exist_ok=True)
    desktop, phone = SHOTS / "model-desktop.png", SHOTS / "model-phone.png"
    run_chromium(tmp_path, "--window-size=1100,1500", f"--screenshot={desktop}", report.as_uri())
    run_chromium(tmp_path, "--window-size=390,1400", f"--screenshot={phone}", report.as_uri())
    w, h, _, _ = read_png(phone)
    assert (w, h) == (390, 1400)
    assert colour_count(desktop, "#0072B2") > 5000  # weights, in five bars
    assert colour_count(desktop, "#56B4E9") > 1000  # KV cache
    # 4. printed: a PDF comes out
    pdf = SHOTS / "model.pdf"
    run_chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", report.as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_scan_report_in_chromium(hub, cli, tmp_path):
    from hfvram.report.html import render_scan

    chromium()
    models = tmp_path / "models.txt"
    models.write_text("\n".join(SCAN_MODELS) + "\n")
    rows = scan_rows(cli, models, ["RTX-4090", "L40S", "H100-SXM"], frameworks="vllm")
    report = tmp_path / "study.html"
    report.write_text(render_scan(rows))
    dom, log = run_chromium(tmp_path, "--dump-dom", report.as_uri())
    assert console_messages(log) == []
    assert check_scan_page(Page(dom)) == rows
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "scan-desktop.png"
    run_chromium(tmp_path, "--window-size=1000,900", f"--screenshot={shot}", report.as_uri())
    assert colour_count(shot, "#dafbe1") > 2000 and colour_count(shot, "#ffebe9") > 200  # fits and does-not-fit cells
    laid = layout(tmp_path, report, 390)
    assert laid["innerWidth"] == 390 and laid["scrollWidth"] <= 390  # the grid scrolls inside its box, not the page

