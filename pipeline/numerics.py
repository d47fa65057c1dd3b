"""Pinned float numerics: the same run gives the same bits on every x86-64 CPU with AVX2 and FMA.

A float sum's rounding depends on the order of its terms, and the libraries torch calls pick that
order from the CPU they find: ATen's vectorised kernels (AVX-512: 16 lanes, AVX2: 8, default:
scalar), oneDNN's JIT convolutions (one kernel per ISA), MKL's BLAS (one code path per ISA and
vendor). Measured on a 2-core AMD EPYC (README "Same numbers on every machine"): capping ATen to its
`default` kernels, or oneDNN to SSE4.1, changes a 2-epoch run's test accuracy by about a point; so
does a second thread. So every process that trains or evaluates fixes them, before its first tensor
operation (`pin_environment`, run by `import pipeline`; `pin_torch`, run by every training and
conversion entry point):

- `ATEN_CPU_CAPABILITY=avx2`: ATen's AVX2 kernels, on AVX-512 machines too;
- `ONEDNN_MAX_CPU_ISA=AVX2`: oneDNN's AVX2 kernels; `torch.backends.mkldnn.deterministic`;
- `MKL_CBWR=COMPATIBLE`, `MKL_DYNAMIC=FALSE`: MKL's one code path that Intel documents as
  reproducible on Intel *and* other vendors' CPUs, at a fixed thread count;
- NNPACK off (convolutions oneDNN declines fall back to ATen + MKL, not to NNPACK's own dispatch);
- `torch.use_deterministic_algorithms(True)`; on CUDA also cuDNN deterministic, no benchmark
  autotuning, no TF32, and `CUBLAS_WORKSPACE_CONFIG=:4096:8`;
- the thread count is the run's (`compute.threads`), and part of its identity.

A CPU without AVX2 and FMA cannot run the pinned kernels: nothing is pinned there, and the
environment record says so. `PIPELINE_NUMERICS=native` leaves the libraries' own choices (the
benchmark and the cross-ISA test use it to measure what pinning changes).
"""
from __future__ import annotations

import functools
import os
import platform
import sys
from typing import Any

__all__ = ["CUDA_ENV", "ISA_CAPS", "PINNED_ENV", "environment", "native_requested", "pin_environment", "pin_torch",
           "pinnable", "supported_isas"]

PINNED_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
}
CUDA_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}  # deterministic cuBLAS (CUDA's reproducibility notes)
_SWITCH = "PIPELINE_NUMERICS"  # "native": pin nothing
# What the libraries pick on a CPU whose best ISA is the key; set as caps, they stand in for such a CPU.
ISA_CAPS = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "sse4.1": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
_NEEDS = {"avx512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}, "avx2": {"avx2", "fma"}, "sse4.1": {"sse4_1"}}


def native_requested() -> bool:
    """True when `PIPELINE_NUMERICS=native` asks for the libraries' own choices."""
    return os.environ.get(_SWITCH, "pinned") == "native"


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pinnable() -> bool:
    """True on an x86-64 CPU with AVX2 and FMA, the ISA everything is pinned to."""
    return platform.machine() in ("x86_64", "AMD64") and {"avx2", "fma"} <= _cpu_flags()


def supported_isas() -> list[str]:
    """The `ISA_CAPS` levels this CPU can run, best first (the first is what the libraries pick by default)."""
    return [isa for isa in ISA_CAPS if _NEEDS[isa] <= _cpu_flags()]


def pin_environment() -> None:
    """Set the libraries' ISA and reproducibility switches (`PINNED_ENV`, `CUDA_ENV`) in this process's
    environment, overriding the shell's; they take effect when each library first runs, so this must
    happen before the first tensor operation (`import pipeline` does it). Nothing when
    `PIPELINE_NUMERICS=native` or the CPU is not `pinnable`."""
    if native_requested():
        return
    os.environ.update(CUDA_ENV)
    if pinnable():
        os.environ.update(PINNED_ENV)


def pin_torch() -> None:
    """torch's own switches: deterministic algorithms, oneDNN deterministic, no NNPACK, and on CUDA
    deterministic cuDNN without autotuning or TF32. Call before a run's first tensor operation."""
    if native_requested():
        return
    import torch

    torch.use_deterministic_algorithms(True)
    torch.backends.mkldnn.deterministic = True
    torch.backends.nnpack.set_flags(False)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def environment(device: str = "cpu") -> dict[str, Any]:
    """What produced a run's numbers: versions, CPU, the ISA in effect, threads, the pinning (not part of a
    run's identity; `results/<profile>/environment.json` collects them)."""
    import numpy
    import torch

    isa = torch.backends.cpu.get_cpu_capability()
    pinned = not native_requested() and pinnable() and isa == "AVX2"
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu": _cpu_model(),
        "cpu_flags": sorted(_cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"}),
        "isa": isa,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "library default"),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "off"),
        "threads": torch.get_num_threads(),
        "pinned": pinned,
        "device": device,
        "platform": sys.platform,
    }
    if device.startswith("cuda"):
        record.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                      cudnn=torch.backends.cudnn.version())
    return record
