"""What this machine has: a CUDA device or not, and how much memory each kind of device holds.

The validators ask here before a run is planned or a model allocated (`pipeline.config`,
`pipeline.models`), so a value the machine cannot honour is refused in one line, not by an
allocation error or a driver's traceback.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["cuda_available", "memory_bytes", "memory_shortfall"]

# cgroup limits (v2, then v1) that cap this process's memory below the physical RAM in a container.
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


@functools.cache
def cuda_available() -> bool:
    """Whether torch finds a CUDA device here."""
    import torch

    return torch.cuda.is_available()


@functools.cache
def memory_bytes(kind: str) -> int:
    """The memory a run on device kind `kind` (`cpu` or `cuda`) can use at most: the physical RAM (or a
    smaller container limit), or the first CUDA device's memory."""
    if kind == "cuda":
        import torch

        return torch.cuda.get_device_properties(0).total_memory
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in _CGROUP_LIMITS:
        text = limit.read_text().strip() if limit.is_file() else ""
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_shortfall(need: int, kind: str) -> str | None:
    """"needs about X GiB, more than the Y GiB of `kind` memory this machine has" when `need` bytes exceed
    `memory_bytes(kind)`; None when they fit."""
    have = memory_bytes(kind)
    if need <= have:
        return None
    return f"needs about {need / 2**30:,.1f} GiB, more than the {have / 2**30:,.1f} GiB of {kind} memory this machine has"
