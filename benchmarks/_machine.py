"""What CPU a benchmark ran on: 2-core machines of this project differ ~3x in float32 throughput
(AVX2 vs wider vector units), so every result names the CPU model and torch's vector kernel level."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_description() -> str:
    """e.g. ``"AMD EPYC, torch kernels AVX2"``."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import torch

        return f"{model}, torch kernels {torch.backends.cpu.get_cpu_capability()}"
    except ImportError:
        return model
