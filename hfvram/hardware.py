"""This machine's GPUs and memory: `--gpu auto` and `hfvram gpus --local`.

- NVIDIA through NVML: the `nvidia-ml-py` package (`pip install 'hfvram[nvidia]'`), imported here and only when
  detection runs. Usable memory is NVML's total less what the driver reserves (`nvmlDeviceGetMemoryInfo` version 2,
  the `nvidia-smi -q` "Reserved" line): what CUDA reports as the device total, as GPUS.md explains.
- AMD through `rocm-smi --showproductname --showmeminfo vram --json` (the VRAM total HIP reports), else the amdgpu
  driver's sysfs files (`/sys/class/drm/cardN/device/mem_info_vram_total`, no marketing name there).
- Apple silicon through `sysctl`: the machine's unified memory and the share macOS lets the GPU wire
  (`iogpu.wired_limit_mb` when set, else the rule in `hfvram.gpus.apple_working_set`).
- Host RAM from /proc/meminfo (Linux), `sysctl hw.memsize` (macOS) or sysconf: what the llama.cpp host-RAM and
  offload verdicts can default to (`default_ram_bytes`).

A detected device takes its catalog entry when its name and memory match one (`hfvram.gpus.match`: FP8, compute
capability and class come from there) with the memory measured here; otherwise it is a custom GPU with its real total.
Detection runs once per process (`detect(refresh=True)` runs it again).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import field, replace

from .errors import UsageError
from .gpus import GPU, GPUChoice, apple_working_set, match
from .record import record
from .units import GiB, MiB, fmt_bytes

# Where the amdgpu driver's files and the kernel's memory counters live (tests point these at a fake tree).
SYSFS_DRM = "/sys/class/drm"
PROC_MEMINFO = "/proc/meminfo"
# A vendor tool that has not answered in this long is hung (a wedged driver); detection goes on without it. rocm-smi
# and sysctl answer in well under a second on a working machine.
TOOL_TIMEOUT_S = 10.0
# An AMD device with less VRAM than this is an integrated GPU's carve-out, not memory to fit a model in: a Ryzen
# Raphael iGPU reports 67108864 bytes next to a 16 GiB discrete card (rocm-smi output in mudler/LocalAI#7761), a Vega
# iGPU 512 MiB (clbr/radeontop#163). It is left out when another GPU is present.
INTEGRATED_BELOW = 1 * GiB
PCI_VENDOR_AMD = "0x1002"

NVIDIA_EXTRA = "pip install 'hfvram[nvidia]'"
# CUDA cores per SM by compute capability, to turn NVML's core count (nvmlDeviceGetNumGpuCores; NVML has no SM count
# for a whole GPU) into SMs, which size the CUDA context (hfvram.estimate.base.cuda_context_bytes): NVIDIA/cuda-samples
# Common/helper_cuda.h `_ConvertSMVer2Cores`, what deviceQuery prints as "CUDA Cores/MP" (6.0 to 9.0); 12.0 from the
# RTX PRO 6000 Blackwell's 24,064 cores on 188 SMs (NVIDIA's RTX Blackwell whitepaper, Table 1, quoted in
# NVIDIA/cudnn-frontend#1164). Other capabilities: the catalogue's count, if the card is in it.
CORES_PER_SM = {"6.0": 64, "6.1": 128, "6.2": 128, "7.0": 64, "7.2": 64, "7.5": 64, "8.0": 64, "8.6": 128, "8.7": 128,
                "8.9": 128, "9.0": 128, "12.0": 128}


class NoGPUFound(UsageError):
    kind = "no-gpu"


@record(frozen=True)
class Device:
    """One GPU as this machine reports it."""

    index: int  # within its vendor, in the order the vendor tool lists them
    vendor: str  # nvidia | amd | apple
    name: str  # as the driver names it
    total_bytes: int  # the tool's total (NVML total, rocm-smi VRAM total, unified memory)
    usable_bytes: int  # what an engine can budget from (see the module docstring)
    how: str  # where usable_bytes came from, in words
    source: str  # nvml | rocm-smi | sysfs | sysctl
    used_bytes: int | None = None  # in use right now (shown, never used for a verdict)
    compute_capability: str | None = None
    gfx_arch: str | None = None
    catalog: str | None = None  # the matched catalog entry's name
    sms: int | None = None  # multiprocessors, from NVML's core count (CORES_PER_SM); None: not reported

    def gpu(self) -> GPU:
        """The GPU a verdict is worked out for: the catalog entry with this machine's memory, or a custom GPU."""
        entry = match(self.name, self.total_bytes, self.vendor) if self.catalog else None
        if entry is not None:
            return replace(entry, usable_bytes=self.usable_bytes, usable_derived=False, sms=self.sms or entry.sms)
        cc = _float(self.compute_capability)
        return GPU(name=self.name, memory_bytes=self.total_bytes, usable_bytes=self.usable_bytes,
                   # GPUS.md's rules: hardware FP8 from compute capability 8.9, bf16 from 8.0 (NVIDIA only)
                   fp8=cc >= 8.9, bf16=cc >= 8.0, compute_capability=self.compute_capability, klass="custom",
                   vendor=self.vendor, sms=self.sms)

    def to_dict(self) -> dict:
        return {"index": self.index, "vendor": self.vendor, "name": self.name, "catalog": self.catalog,
                "total_bytes": self.total_bytes, "usable_bytes": self.usable_bytes, "usable_from": self.how,
                "used_bytes": self.used_bytes, "compute_capability": self.compute_capability,
                "gfx_arch": self.gfx_arch, "sms": self.sms, "source": self.source}


@record(frozen=True)
class HostRAM:
    """The machine's system memory (for offload verdicts), and where the figure came from."""

    total_bytes: int | None
    available_bytes: int | None  # Linux MemAvailable: what new work can take without swapping
    source: str

    def to_dict(self) -> dict:
        return {"total_bytes": self.total_bytes, "available_bytes": self.available_bytes, "source": self.source}


@record(frozen=True)
class Hardware:
    """What `--gpu auto` found on this machine: devices, system memory, and how they were found."""

    devices: tuple[Device, ...]
    ram: HostRAM
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was not found or left out, and why
    searched: tuple[str, ...] = field(default_factory=tuple)  # where each vendor was looked for, and what it said

    def to_dict(self) -> dict:
        choice = None
        if self.devices:
            c, note = _choose(self.devices)
            choice = {"name": c.gpu.name, "count": c.count, "usable_bytes": c.gpu.usable_bytes,
                      "memory_bytes": c.gpu.memory_bytes, "note": note}
        return {"devices": [d.to_dict() for d in self.devices], "gpu_auto": choice, "host_ram": self.ram.to_dict(),
                "notes": list(self.notes), "searched": list(self.searched)}


# -- detection ----------------------------------------------------------------------------------------------------

_DETECTED: Hardware | None = None


def detect(refresh: bool = False, system: str | None = None) -> Hardware:
    """This machine's GPUs (NVIDIA, then AMD, then Apple) and host RAM. Cached for the process."""
    global _DETECTED
    if _DETECTED is not None and not refresh and system is None:
        return _DETECTED
    system = system or platform.system()
    notes: list[str] = []
    searched: list[str] = []
    devices = _nvidia(notes, searched) + _amd(notes, searched, system)
    if system == "Darwin":
        devices += _apple(notes, searched)
    devices = _drop_integrated(devices, notes)
    hw = Hardware(devices=tuple(devices), ram=host_ram(system), notes=tuple(notes), searched=tuple(searched))
    _DETECTED = hw
    return hw


def _nvidia(notes: list[str], searched: list[str]) -> list[Device]:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        searched.append(f"NVIDIA: nvidia-ml-py is not installed ({NVIDIA_EXTRA})")
        if shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia"):
            notes.append(f"an NVIDIA driver is installed but nvidia-ml-py is not: {NVIDIA_EXTRA}")
        return []
    error = getattr(pynvml, "NVMLError", Exception)
    try:
        pynvml.nvmlInit()
    except error as exc:  # no driver, no library: no NVIDIA GPU to report
        searched.append(f"NVIDIA: NVML says {_words(exc)}")
        return []
    devices = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = _text(pynvml.nvmlDeviceGetName(h))
            reserved = None
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
                reserved = int(mem.reserved)
            except (error, AttributeError, TypeError):  # an older driver or nvidia-ml-py: version 1 only
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            total = int(mem.total)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                cc = f"{major}.{minor}"
            except error:
                cc = None
            sms = None
            try:
                cores, per_sm = int(pynvml.nvmlDeviceGetNumGpuCores(h)), CORES_PER_SM.get(cc or "")
                if per_sm and cores > 0 and cores % per_sm == 0:
                    sms = cores // per_sm
            except (error, AttributeError, TypeError, ValueError):  # an older nvidia-ml-py or driver
                pass
            entry = match(name, total, "nvidia")
            if reserved is not None:
                usable, how = total - reserved, (f"NVML total {fmt_bytes(total)} less {fmt_bytes(reserved)} the driver "
                                                 f"reserves")
            elif entry is not None and entry.usable_bytes < total:
                # NVML's version-1 total includes the driver's reservation (an upper bound, GPUS.md): the catalog's
                # figure for the card is kept when it is lower.
                usable, how = entry.usable_bytes, (f"the catalog's {entry.name} figure (NVML {fmt_bytes(total)} "
                                                   f"includes the driver's reservation)")
            else:
                usable, how = total, "NVML total (includes the driver's reservation: an upper bound)"
            devices.append(Device(index=i, vendor="nvidia", name=name, total_bytes=total, usable_bytes=usable,
                                  how=how, source="nvml", used_bytes=int(mem.used), compute_capability=cc,
                                  catalog=entry.name if entry else None, sms=sms))
    except error as exc:
        notes.append(f"NVML: {_words(exc)}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except error:
            pass
    searched.append(f"NVIDIA: NVML lists {len(devices)} GPU(s)")
    return _visible(devices, "CUDA_VISIBLE_DEVICES", notes)


def _amd(notes: list[str], searched: list[str], system: str) -> list[Device]:
    devices = _rocm_smi(notes)
    if devices is not None:
        searched.append(f"AMD: rocm-smi lists {len(devices)} GPU(s)")
    elif system == "Linux":
        devices = _amd_sysfs()
        searched.append(f"AMD: no rocm-smi; {SYSFS_DRM} has {len(devices)} amdgpu device(s)")
    else:
        searched.append("AMD: no rocm-smi")
    devices = devices or []
    env = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in os.environ else "ROCR_VISIBLE_DEVICES"
    return _visible(devices, env, notes)


def _rocm_smi(notes: list[str]) -> list[Device] | None:
    """None when rocm-smi is not installed or said nothing usable (then sysfs is read)."""
    tool = shutil.which("rocm-smi")
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "--showproductname", "--showmeminfo", "vram", "--json"], capture_output=True,
                             text=True, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"rocm-smi did not answer: {_words(exc)}")
        return None
    try:  # its warnings go to stderr (logging); stdout is the JSON, or nothing when it has nothing to report
        data = json.loads(out.stdout) if out.stdout.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        notes.append("rocm-smi printed no JSON" + (f": {_words(out.stderr)[:160]}" if out.stderr.strip() else ""))
        return None
    devices = []
    cards = sorted(((int(k[4:]), v) for k, v in data.items() if re.fullmatch(r"card\d+", k) and isinstance(v, dict)))
    for n, (card, info) in enumerate(cards):
        fields = {k.lower(): str(v).strip() for k, v in info.items()}
        total = _int(fields.get("vram total memory (b)"))
        if not total:
            notes.append(f"rocm-smi card{card}: no VRAM total")
            continue
        series = fields.get("card series") or ""
        name = series if series and series.upper() != "N/A" else f"AMD GPU {fields.get('card model', '')}".strip()
        entry = match(name, total, "amd")
        devices.append(Device(index=n, vendor="amd", name=name, total_bytes=total, usable_bytes=total,
                              how="rocm-smi VRAM total (what HIP reports as the device total)", source="rocm-smi",
                              used_bytes=_int(fields.get("vram total used memory (b)")),
                              gfx_arch=fields.get("gfx version") or None, catalog=entry.name if entry else None))
    return devices


def _amd_sysfs() -> list[Device]:
    devices = []
    cards = [p for p in glob.glob(os.path.join(SYSFS_DRM, "card*")) if re.fullmatch(r"card\d+", os.path.basename(p))]
    for path in sorted(cards, key=lambda p: int(os.path.basename(p)[4:])):
        dev = os.path.join(path, "device")
        if _read(os.path.join(dev, "vendor")) != PCI_VENDOR_AMD:
            continue
        total = _int(_read(os.path.join(dev, "mem_info_vram_total")))
        if not total:
            continue
        name = _read(os.path.join(dev, "product_name")) or f"AMD GPU {_read(os.path.join(dev, 'device')) or ''}".strip()
        entry = match(name, total, "amd")
        devices.append(Device(index=len(devices), vendor="amd", name=name, total_bytes=total, usable_bytes=total,
                              how="amdgpu mem_info_vram_total", source="sysfs",
                              used_bytes=_int(_read(os.path.join(dev, "mem_info_vram_used"))),
                              catalog=entry.name if entry else None))
    return devices


def _apple(notes: list[str], searched: list[str]) -> list[Device]:
    brand = _sysctl("machdep.cpu.brand_string") or ""
    memsize = _int(_sysctl("hw.memsize"))
    if not brand.startswith("Apple") or not memsize:
        searched.append(f"Apple: not Apple silicon ({brand or 'sysctl gave no CPU name'})")
        return []
    searched.append(f"Apple: {brand}, {fmt_bytes(memsize)} unified memory")
    wired = _int(_sysctl("iogpu.wired_limit_mb")) or 0  # 0: macOS's default share
    if wired:
        usable, how = wired * MiB, f"iogpu.wired_limit_mb = {wired} (set on this machine)"
    else:
        usable = apple_working_set(memsize)
        how = f"macOS's default GPU share, {usable / memsize:.3g} of {fmt_bytes(memsize)} (GPUS.md)"
    entry = match(brand, memsize, "apple")
    return [Device(index=0, vendor="apple", name=brand, total_bytes=memsize, usable_bytes=usable, how=how,
                   source="sysctl", catalog=entry.name if entry else None)]


def _drop_integrated(devices: list[Device], notes: list[str]) -> list[Device]:
    small = [d for d in devices if d.vendor == "amd" and d.total_bytes < INTEGRATED_BELOW]
    if not small:
        return devices
    if len(small) < len(devices):
        for d in small:
            notes.append(f"left out {d.name}: {fmt_bytes(d.total_bytes)} of VRAM, an integrated GPU's carve-out")
        return [d for d in devices if d not in small]
    notes.append("only an integrated GPU was found: it also uses system memory that its VRAM total leaves out; "
                 "give the memory it may use with --gpu-mem")
    return devices


def _visible(devices: list[Device], env: str, notes: list[str]) -> list[Device]:
    """The devices an engine started here would see: `CUDA_VISIBLE_DEVICES=1,0` (indices; an empty value hides
    them all), likewise HIP_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES for AMD."""
    value = os.environ.get(env)
    if value is None or not devices:
        return devices
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not all(v.isdigit() for v in items):
        notes.append(f"{env}={value} is not applied (hfvram reads device indices only)")
        return devices
    by_index = {d.index: d for d in devices}
    shown = [by_index[int(v)] for v in items if int(v) in by_index]
    notes.append(f"{env}={value}: {len(shown)} of {len(devices)} GPUs visible")
    return shown


# -- what --gpu auto means ----------------------------------------------------------------------------------------

def auto_choice(hw: Hardware | None = None) -> GPUChoice:
    """All of this machine's GPUs as one `--gpu` choice; mixed cards count as the smallest of them."""
    hw = hw or detect()
    if not hw.devices:
        why = "; ".join([*hw.searched, *hw.notes])
        raise NoGPUFound("--gpu auto found no GPU on this machine" + (f" ({why})" if why else "") +
                         ": name one with --gpu NAME[:COUNT] (see `hfvram gpus`) or give its memory with "
                         "--gpu-mem 24GiB")
    return _choose(hw.devices)[0]


def _choose(devices) -> tuple[GPUChoice, str | None]:
    gpus = [d.gpu() for d in devices]
    smallest = min(gpus, key=lambda g: g.usable_bytes)
    names = list(dict.fromkeys(g.name for g in gpus))
    note = None
    if len(names) > 1:
        note = (f"mixed GPUs ({', '.join(names)}): sized as {len(gpus)} x the smallest, {smallest.name} "
                f"({fmt_bytes(smallest.usable_bytes)} usable)")
    return GPUChoice(smallest, len(gpus)), note


def summary(hw: Hardware | None = None) -> list[str]:
    """One line saying what `--gpu auto` stands for, then any notes (for stderr)."""
    hw = hw or detect()
    choice, note = _choose(hw.devices)
    where = ", ".join(dict.fromkeys(d.source for d in hw.devices))
    lines = [f"--gpu auto: {choice.count} x {choice.gpu.name}, {fmt_bytes(choice.gpu.usable_bytes)} usable each "
             f"(detected through {where})"]
    return lines + ([note] if note else []) + list(hw.notes)


# -- host memory --------------------------------------------------------------------------------------------------

def host_ram(system: str | None = None) -> HostRAM:
    system = system or platform.system()
    if system == "Linux":
        values = {}
        try:
            with open(PROC_MEMINFO, encoding="ascii") as fh:
                for line in fh:
                    key, _, rest = line.partition(":")
                    parts = rest.split()
                    if parts and parts[0].isdigit():
                        values[key] = int(parts[0]) * 1024  # /proc/meminfo counts kB (KiB)
        except OSError:
            values = {}
        if "MemTotal" in values:
            return HostRAM(values["MemTotal"], values.get("MemAvailable"), "/proc/meminfo")
    if system == "Darwin":
        total = _int(_sysctl("hw.memsize"))
        if total:
            return HostRAM(total, None, "sysctl hw.memsize")
    try:
        return HostRAM(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None, "sysconf")
    except (AttributeError, ValueError, OSError):
        return HostRAM(None, None, "unknown")


def default_ram_bytes() -> int | None:
    """The host RAM a llama.cpp offload / host-RAM verdict can assume when none is given: what is available now
    (Linux MemAvailable), else the total. On Apple silicon this is the same memory the GPU's share comes from."""
    ram = detect().ram
    return ram.available_bytes or ram.total_bytes


# -- small helpers ------------------------------------------------------------------------------------------------

def _sysctl(key: str) -> str | None:
    tool = shutil.which("sysctl")
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "-n", key], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _int(text) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _float(text) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _words(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = ["Device", "Hardware", "HostRAM", "NoGPUFound", "auto_choice", "default_ram_bytes", "detect", "host_ram",
           "summary"]
