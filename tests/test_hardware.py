"""Your own hardware: `--gpu auto` and `hfvram gpus --local` against a fake NVML (tests/fake_nvml/pynvml.py), a fake
rocm-smi and sysctl on PATH and a fake sysfs tree (the `fake_machine` fixture), and the catalogue's new cards.

Device figures are real prints: nvidia-smi -q captures in utkuozdemir/nvidia_gpu_exporter (H100 80GB HBM3 Total
81559 MiB / Reserved 479 MiB, RTX 4080 SUPER 16376 / 434, L40S 46068 / 609), rocm-smi JSON from marimo-team/marimo#9237
(RX 7900 XT) and mudler/LocalAI#7761 (a Navi 21 card next to a Raphael iGPU), LACT's RX 7900 XTX (24560 MiB).
"""

from __future__ import annotations

import json

import pytest

import hfvram
from hfvram import gpus
from hfvram.errors import HfvramError

MiB = 1 << 20
GiB = 1 << 30

H100 = {"name": "NVIDIA H100 80GB HBM3", "total": 81559 * MiB, "reserved": 479 * MiB, "used": 0, "cc": [9, 0]}
RTX4080S = {"name": "NVIDIA GeForce RTX 4080 SUPER", "total": 16376 * MiB, "reserved": 434 * MiB, "used": 596 * MiB,
            "cc": [8, 9]}
L40S = {"name": "NVIDIA L40S", "total": 46068 * MiB, "reserved": 609 * MiB, "used": 0, "cc": [8, 9]}
RX7900XT = {"card0": {"GPU use (%)": "0", "VRAM Total Memory (B)": "21458059264",
                      "VRAM Total Used Memory (B)": "27856896", "Card Series": "Radeon RX 7900 XT",
                      "Card Model": "0x744c", "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
                      "Card SKU": "D70401XT", "GFX Version": "gfx1100"}}
NAVI21_AND_IGPU = {
    "card0": {"VRAM Total Memory (B)": "17163091968", "VRAM Total Used Memory (B)": "692142080",
              "Card Series": "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]", "Card Model": "0x73bf",
              "GFX Version": "gfx1030"},
    "card1": {"VRAM Total Memory (B)": "67108864", "VRAM Total Used Memory (B)": "26079232",
              "Card Series": "Raphael", "Card Model": "0x164e", "GFX Version": "gfx1036"}}
MEMINFO = "MemTotal:       65755140 kB\nMemFree:         1034660 kB\nMemAvailable:   50307724 kB\n"


def nvml(*devices, **extra):
    return {"devices": list(devices), **extra}


# -- NVIDIA through NVML ------------------------------------------------------------------------------------------

def test_two_h100s_are_the_catalog_card_with_the_memory_nvml_reports(fake_machine):
    fake_machine(nvml=nvml(H100, H100))
    choice = gpus.parse_gpu("auto")
    assert choice.count == 2 and choice.gpu.name == "H100-SXM" and choice.gpu.vendor == "nvidia"
    # NVML total less the driver's reservation: 81080 MiB, exactly the catalog's figure from the same capture
    assert choice.gpu.usable_bytes == (81559 - 479) * MiB == 85018542080
    assert choice.gpu.fp8 is True and choice.gpu.compute_capability == "9.0"


def test_auto_in_the_api_sizes_on_all_detected_gpus(fake_machine):
    fake_machine(nvml=nvml(L40S, L40S))
    a = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="auto", frameworks=["vllm"], projections=())
    d = a.to_dict()
    assert d["gpu"]["name"] == "L40S" and d["gpu"]["count"] == 2
    assert d["gpu"]["usable_bytes"] == (46068 - 609) * MiB
    assert d["estimates"]["vllm"]["gpus"] == 2  # two GPUs alone mean tensor parallel 2


def test_mixed_cards_count_as_the_smallest_and_say_so(fake_machine):
    hw = fake_machine(nvml=nvml(H100, RTX4080S))
    choice = gpus.parse_gpu("auto")
    assert choice.count == 2 and choice.gpu.name == "RTX-4080-SUPER"
    assert choice.gpu.usable_bytes == (16376 - 434) * MiB
    lines = hw.summary()
    assert lines[0].startswith("--gpu auto: 2 x RTX-4080-SUPER, 15.57 GiB usable each")
    assert any("mixed GPUs (H100-SXM, RTX-4080-SUPER)" in line and "smallest" in line for line in lines)


def test_without_the_reserved_figure_the_catalogs_lower_total_is_kept(fake_machine):
    # version-1 memory info only: NVML's 24564 MiB for an RTX 4090 includes the driver's reservation
    rtx4090 = {"name": "NVIDIA GeForce RTX 4090", "total": 24564 * MiB, "used": 0, "cc": [8, 9]}
    hw = fake_machine(nvml=nvml(rtx4090, v1_only=True))
    choice = gpus.parse_gpu("auto")
    assert choice.gpu.name == "RTX-4090"
    assert choice.gpu.usable_bytes == gpus.find("RTX-4090").usable_bytes < 24564 * MiB
    assert "catalog" in hw.detect().devices[0].how


def test_a_card_the_catalog_lacks_is_a_custom_gpu_with_its_real_total(fake_machine):
    odd = {"name": "NVIDIA RTX 2000E Ada Generation", "total": 16380 * MiB, "reserved": 400 * MiB, "cc": [8, 9]}
    fake_machine(nvml=nvml(odd))
    g = gpus.parse_gpu("auto").gpu
    assert g.name == "NVIDIA RTX 2000E Ada Generation" and g.klass == "custom"
    assert g.usable_bytes == 15980 * MiB and g.fp8 is True and g.bf16 is True


def test_nvml_cores_give_the_sm_count_that_sizes_the_cuda_context(fake_machine):
    from hfvram.estimate.base import CUDA_CONTEXT_BYTES, Settings, cuda_context_bytes

    # a card the catalogue lacks: its SMs from NVML's cores (RTX 2000E Ada: 2,816 cores, 128 an SM on 8.9 = 22)
    odd = {"name": "NVIDIA RTX 2000E Ada Generation", "total": 16380 * MiB, "reserved": 400 * MiB, "cc": [8, 9],
           "cores": 2816}
    hw = fake_machine(nvml=nvml(odd))
    assert hw.detect().devices[0].to_dict()["sms"] == 22
    g = gpus.parse_gpu("auto")
    assert g.gpu.sms == 22 and g.gpu.resident_threads == 22 * 1536
    assert cuda_context_bytes(Settings(gpu=g)) < CUDA_CONTEXT_BYTES  # 22 SMs: ~68 MiB, not 400
    # without the core count (an older driver) a custom card keeps the 400 MiB figure, a catalogue card its own count
    fake_machine(nvml=nvml({k: v for k, v in odd.items() if k != "cores"}, H100))
    assert [d.sms for d in hw.detect().devices] == [None, None]
    assert gpus.find("H100-SXM").sms == 132 and cuda_context_bytes(Settings(gpu=gpus.parse_gpu("auto"))) == \
        CUDA_CONTEXT_BYTES  # mixed cards: the smallest, the custom one, stands for both
    fake_machine(nvml=nvml({**H100, "cores": 132 * 128}))
    assert gpus.parse_gpu("auto").gpu.sms == 132


def test_memory_variants_are_told_apart_by_what_nvml_reports(fake_machine):
    # NVML names both RTX 4060 Ti cards alike; 16 GB of memory makes it the 16 GB entry
    ti16 = {"name": "NVIDIA GeForce RTX 4060 Ti", "total": 16380 * MiB, "reserved": 300 * MiB, "cc": [8, 9]}
    fake_machine(nvml=nvml(ti16))
    assert gpus.parse_gpu("auto").gpu.name == "RTX-4060-Ti-16GB"


def test_cuda_visible_devices_is_what_an_engine_would_see(fake_machine, monkeypatch):
    hw = fake_machine(nvml=nvml(H100, RTX4080S))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    choice = gpus.parse_gpu("auto")
    assert choice.count == 1 and choice.gpu.name == "RTX-4080-SUPER"
    assert any("CUDA_VISIBLE_DEVICES=1: 1 of 2" in n for n in hw.detect().notes)


def test_tp_beyond_the_detected_gpus_is_a_usage_error(fake_machine):
    fake_machine(nvml=nvml(H100))
    with pytest.raises(HfvramError, match="--tp x --pp use 2 GPUs but --gpu auto has 1"):
        hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="auto", tp=2, projections=())


def test_no_gpu_is_one_line_that_says_how_to_name_one(fake_machine, cli):
    fake_machine(nvml=nvml(init_error="Driver Not Loaded"))
    code, out, err = cli(["meta-llama/Llama-2-7b-hf", "--gpu", "auto", "--offline"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--gpu auto found no GPU on this machine" in err and "Driver Not Loaded" in err
    assert "--gpu NAME[:COUNT]" in err and "--gpu-mem 24GiB" in err


def test_no_nvidia_ml_py_says_which_extra_to_install(fake_machine, cli):
    fake_machine()  # nothing: pynvml cannot be imported, no rocm-smi, an empty /sys/class/drm
    code, _, err = cli(["check", "meta-llama/Llama-2-7b-hf", "--gpu", "auto", "--offline"])
    assert code == 2 and "pip install 'hfvram[nvidia]'" in err and "no rocm-smi" in err


def test_cli_says_what_auto_stood_for(fake_machine, cli):
    fake_machine(nvml=nvml(L40S))
    code, out, err = cli(["check", "meta-llama/Llama-2-7b-hf", "--gpu", "auto", "-f", "vllm", "--offline"])
    assert code == 0 and out.startswith("PASS vllm")
    assert "hfvram: --gpu auto: 1 x L40S, 44.39 GiB usable each (detected through nvml)" in err


# -- AMD through rocm-smi and sysfs -------------------------------------------------------------------------------

def test_rocm_smi_json_maps_to_the_catalog_card(fake_machine):
    fake_machine(rocm_smi=RX7900XT)
    g = gpus.parse_gpu("auto").gpu
    assert g.name == "RX-7900-XT" and g.vendor == "amd" and g.usable_bytes == 21458059264


def test_rocm_smi_without_json_falls_back_to_sysfs(fake_machine):
    # rocm-smi --json with nothing to report logs "No JSON data to report" to stderr and prints nothing
    # (ROCm/rocm_smi_lib python_smi_tools/rocm_smi.py); the amdgpu sysfs files still give the VRAM total
    hw = fake_machine(rocm_smi="", sysfs={"card0": {"vendor": "0x1002", "device": "0x744c",
                                                    "mem_info_vram_total": 24560 * MiB}})
    choice = gpus.parse_gpu("auto")
    assert choice.gpu.usable_bytes == 24560 * MiB and hw.detect().devices[0].source == "sysfs"
    assert any("rocm-smi printed no JSON" in n for n in hw.detect().notes)


def test_integrated_gpu_carve_out_is_left_out_and_a_family_name_resolves_by_memory(fake_machine):
    hw = fake_machine(rocm_smi=NAVI21_AND_IGPU)
    choice = gpus.parse_gpu("auto")
    assert choice.count == 1 and choice.gpu.name in ("RX-6900-XT", "RX-6800-XT", "RX-6800")
    assert choice.gpu.usable_bytes == 17163091968
    assert any("left out Raphael" in n for n in hw.detect().notes)


def test_sysfs_when_rocm_smi_is_absent(fake_machine):
    fake_machine(sysfs={
        "card0": {"vendor": "0x1002", "device": "0x744c", "mem_info_vram_total": 24560 * MiB,
                  "mem_info_vram_used": 0},
        "card1": {"vendor": "0x10de", "device": "0x2684"},  # not an amdgpu device
    })
    g = gpus.parse_gpu("auto").gpu
    assert g.name == "AMD GPU 0x744c" and g.klass == "custom" and g.usable_bytes == 24560 * MiB


def test_mi250_devices_are_gcds(fake_machine):
    # rocminfo / the driver name an MI250X GCD "AMD Instinct MI250X/MI250" (ROCm/rocm_smi_lib#160); each is 64 GiB
    card = {"vendor": "0x1002", "device": "0x740c", "product_name": "AMD Instinct MI250X/MI250",
            "mem_info_vram_total": 64 * GiB}
    fake_machine(sysfs={"card0": card, "card1": card})
    choice = gpus.parse_gpu("auto")
    assert choice.gpu.name == "MI250-GCD" and choice.count == 2


def test_engines_that_do_not_run_on_amd_are_unsupported(fake_machine):
    fake_machine(rocm_smi=RX7900XT)
    a = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="auto", projections=())
    assert not a.estimates["trtllm"].supported
    assert "TensorRT-LLM runs on NVIDIA GPUs, not AMD (RX-7900-XT)" in a.estimates["trtllm"].unsupported
    assert a.estimates["vllm"].supported and a.estimates["llamacpp"].fits


# -- Apple silicon ------------------------------------------------------------------------------------------------

def test_apple_unified_memory_is_its_default_gpu_share(fake_machine):
    hw = fake_machine(sysctl={"hw.memsize": 64 * GiB, "machdep.cpu.brand_string": "Apple M3 Max",
                              "iogpu.wired_limit_mb": 0})
    found = hw.detect(refresh=True, system="Darwin")
    (dev,) = found.devices
    g = dev.gpu()
    assert g.name == "M3-Max-64GB" and g.vendor == "apple"
    assert g.usable_bytes == 48 * GiB  # 3/4 of 64 GiB (GPUS.md)
    assert found.ram.total_bytes == 64 * GiB and found.ram.source == "sysctl hw.memsize"


def test_apple_wired_limit_override_is_read(fake_machine):
    hw = fake_machine(sysctl={"hw.memsize": 64 * GiB, "machdep.cpu.brand_string": "Apple M3 Max",
                              "iogpu.wired_limit_mb": 57344})
    (dev,) = hw.detect(refresh=True, system="Darwin").devices
    assert dev.usable_bytes == 56 * GiB and "iogpu.wired_limit_mb = 57344" in dev.how


def test_apple_gpu_runs_llamacpp_and_transformers_only(fake_machine):
    hw = fake_machine(sysctl={"hw.memsize": 32 * GiB, "machdep.cpu.brand_string": "Apple M2 Max"})
    hw.detect(refresh=True, system="Darwin")
    a = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="auto", projections=())
    assert a.estimate_settings.gpu.gpu.name == "M2-Max-32GB"
    assert {n for n, e in a.estimates.items() if e.supported} == {"transformers", "llamacpp"}
    # 2/3 of 32 GiB: what llama.cpp printed on this machine's twin, 21845.34 MiB (ollama/ollama#434), to 0.01 MiB
    assert abs(a.estimate_settings.gpu.gpu.usable_bytes - 21845.34 * MiB) < 0.01 * MiB


# -- host RAM and `hfvram gpus --local` ---------------------------------------------------------------------------

def test_host_ram_from_meminfo(fake_machine):
    hw = fake_machine(meminfo=MEMINFO)
    ram = hw.detect().ram
    assert ram.total_bytes == 65755140 * 1024 and ram.available_bytes == 50307724 * 1024
    assert hw.default_ram_bytes() == 50307724 * 1024


def test_gpus_local_json(fake_machine, cli):
    fake_machine(nvml=nvml(H100, H100), meminfo=MEMINFO)
    code, out, _ = cli(["gpus", "--local", "--json"])
    d = json.loads(out)
    assert code == 0 and [x["catalog"] for x in d["devices"]] == ["H100-SXM", "H100-SXM"]
    assert d["devices"][0]["usable_bytes"] == 85018542080 and d["devices"][0]["source"] == "nvml"
    assert d["gpu_auto"] == {"name": "H100-SXM", "count": 2, "usable_bytes": 85018542080,
                             "memory_bytes": 80 * GiB, "note": None}
    assert d["host_ram"]["total_bytes"] == 65755140 * 1024


def test_gpus_local_table_and_nothing_found(fake_machine, cli):
    fake_machine(nvml=nvml(RTX4080S), meminfo=MEMINFO)
    code, out, _ = cli(["gpus", "--local"])
    assert code == 0 and "RTX-4080-SUPER" in out and "NVML total" in out and "host RAM: 62.71 GiB" in out
    fake_machine(meminfo=MEMINFO)
    code, out, _ = cli(["gpus", "--local"])
    assert code == 0 and out.startswith("No GPU found on this machine") and "--gpu-mem 24GiB" in out


# -- the catalogue ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, name", [
    ("7900XTX", "RX-7900-XTX"), ("7900-xtx", "RX-7900-XTX"), ("rx7900xtx", "RX-7900-XTX"),
    ("AMD Radeon RX 7900 XTX", "RX-7900-XTX"), ("7900 GRE", "RX-7900-GRE"), ("9070xt", "RX-9070-XT"),
    ("m3max", "M3-Max-36GB"), ("M3 Max 64GB", "M3-Max-64GB"), ("m3max64", "M3-Max-64GB"), ("m2ultra", "M2-Ultra-64GB"),
    ("4090", "RTX-4090"), ("p40", "P40"), ("Tesla P100-PCIE-16GB", "P100-16GB"), ("2080ti", "RTX-2080-Ti"),
    ("5060ti-16gb", "RTX-5060-Ti-16GB"), ("mi355x", "MI355X"), ("mi250", "MI250"), ("titan-rtx", "TITAN-RTX"),
])
def test_names_people_type_resolve(typed, name):
    assert gpus.parse_gpu(typed).gpu.name == name


def test_a_count_still_parses_after_names_with_numbers():
    c = gpus.parse_gpu("2x7900xtx")
    assert c.count == 2 and c.gpu.name == "RX-7900-XTX"
    assert gpus.parse_gpu("M4-Max-128GB:2").count == 2


def test_every_entry_is_sourced_and_apple_memory_is_its_gpu_share():
    entries = gpus._entries()
    catalog = {g.name: g for g in gpus.catalog()}
    for e in entries:
        assert e["memory_source"] and e["vendor"] in ("nvidia", "amd", "apple"), e["name"]
        g = catalog[e["name"]]
        if e["usable_bytes"]:
            assert e["usable_source"] and e["usable_quote"] and not g.usable_derived
        if e["vendor"] == "apple":
            share = 3 / 4 if e["memory_bytes"] >= 64 * GiB else 2 / 3
            rule = int(e["memory_bytes"] * share)
            # a printed working set equals the rule to its printed precision; else the rule applies
            assert abs(g.usable_bytes - rule) <= 6 * MiB, e["name"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names))
    for family in ("P40", "RTX-2080-Ti", "RTX-5070-Ti", "MI355X", "RX-7800-XT", "M1-Ultra-128GB", "M4-Pro-48GB"):
        assert family in catalog


def test_printed_totals_of_new_cards():
    assert gpus.find("P40").usable_bytes == round(22.38 * GiB)
    assert gpus.find("RTX-2080-Ti").usable_bytes == 11523260416
    assert gpus.find("RTX-2080-SUPER").usable_bytes == (8192 - 408) * MiB
    assert gpus.find("RTX-5060-Ti-16GB").usable_bytes == 16617897984
    assert gpus.find("RX-7900-XTX").usable_bytes == 24560 * MiB
    assert gpus.find("M2-Max-96GB").usable_bytes == 73728 * MiB


def test_gpus_vendor_filter(cli):
    code, out, _ = cli(["gpus", "--vendor", "apple", "--json"])
    rows = json.loads(out)
    assert code == 0 and rows and {r["vendor"] for r in rows} == {"apple"}
    assert {r["class"] for r in rows} == {"unified"} and any(r["name"] == "M3-Ultra-512GB" for r in rows)
