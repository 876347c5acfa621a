"""A test double for nvidia-ml-py's `pynvml`: the NVML functions hfvram.hardware calls, answering from a JSON file.

Put this directory first on sys.path and point HFVRAM_FAKE_NVML at a file like
    {"devices": [{"name": "NVIDIA H100 80GB HBM3", "total": 85520809984, "reserved": 502267904, "used": 0,
                  "cc": [9, 0], "cores": 16896}],   # cores: optional (absent: "Not Supported")
     "v1_only": false,          # true: no memory-info version 2 (an old driver / nvidia-ml-py)
     "init_error": null}        # "Driver Not Loaded": nvmlInit fails as on a machine without the driver
Signatures and return shapes follow nvidia-ml-py 13.615 (pynvml.py): structures with .total/.free/.used (and
.reserved for version 2), compute capability as a (major, minor) tuple, names as str.
"""

import json
import os

nvmlMemory_v2 = 0x02000028  # pynvml.py: nvmlMemory_v2


class NVMLError(Exception):
    pass


class _Memory:
    def __init__(self, total, free, used, reserved=None):
        self.total, self.free, self.used = total, free, used
        if reserved is not None:
            self.reserved = reserved


_state = {"init": 0}


def _data():
    with open(os.environ["HFVRAM_FAKE_NVML"], encoding="utf-8") as fh:
        return json.load(fh)


def nvmlInit():
    err = _data().get("init_error")
    if err:
        raise NVMLError(err)
    _state["init"] += 1


def nvmlShutdown():
    if _state["init"] <= 0:
        raise NVMLError("Uninitialized")
    _state["init"] -= 1


def _need_init():
    if _state["init"] <= 0:
        raise NVMLError("Uninitialized")


def nvmlDeviceGetCount():
    _need_init()
    return len(_data()["devices"])


def nvmlDeviceGetHandleByIndex(index):
    _need_init()
    if not 0 <= index < len(_data()["devices"]):
        raise NVMLError("Invalid Argument")
    return index


def nvmlDeviceGetName(handle):
    return _data()["devices"][handle]["name"]


def nvmlDeviceGetMemoryInfo(handle, version=None):
    d = _data()
    dev = d["devices"][handle]
    reserved = dev.get("reserved", 0)
    used = dev.get("used", 0)
    if version:
        if d.get("v1_only"):
            raise NVMLError("Function Not Found")
        return _Memory(dev["total"], dev["total"] - reserved - used, used, reserved)
    # version 1: the reserved memory counts as used (nvidia-smi's pre-R510 view)
    return _Memory(dev["total"], dev["total"] - reserved - used, used + reserved)


def nvmlDeviceGetCudaComputeCapability(handle):
    major, minor = _data()["devices"][handle]["cc"]
    return major, minor


def nvmlDeviceGetNumGpuCores(handle):
    cores = _data()["devices"][handle].get("cores")
    if cores is None:
        raise NVMLError("Not Supported")
    return cores
