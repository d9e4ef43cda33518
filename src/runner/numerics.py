"""Which float kernels produce a run's numbers, on record and on demand.

float32 results differ in their last bits between CPUs, kernel sets and thread counts: the same
code and seeds give each member other bits, and a verdict resting on a few pairs can move with
them (docs/reproducing.md). So every run records what produced its numbers (`record`: torch,
the ATen CPU capability, the MKL and oneDNN instruction-set settings, the CPU, threads, device
and dtype), and `numerics.kernels` picks a kernel set (`use_kernels`):

- `native`: whatever this CPU and environment give (nothing is changed);
- `avx2`: ATen's AVX2 kernels, MKL's AVX2 code path (MKL_CBWR) and oneDNN capped at AVX2: what an
  AVX2 machine computes, on an AVX-512 one;
- `default`: ATen's unvectorized kernels, MKL's compatible path and oneDNN capped at SSE4.1.

torch reads these settings once, at its first operation (ATen's capability) or at the library's
first call (MKL, oneDNN), so a set must be chosen before the run's first tensor operation; a
process that already ran torch under another set cannot switch, and says so in one line.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

import torch
from torch._inductor.runtime.cache_dir_utils import default_cache_dir

from runner import checks

# The environment each kernel set needs (torch, MKL and oneDNN read their own variables).
KERNEL_SETS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
ENV_KEYS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")


def use_kernels(kernels: str) -> None:
    """Put kernel set `kernels` (KERNEL_SETS) in force for this process, before torch's first
    operation; a ConfigError (one line) when the name is unknown, when this process already
    runs under another set, or when this CPU cannot run the set's kernels."""
    if kernels not in KERNEL_SETS:
        raise checks.invalid("numerics.kernels", kernels, f"one of {', '.join(KERNEL_SETS)}")
    wanted = KERNEL_SETS[kernels]
    os.environ.update(wanted)
    separate_compile_cache()
    if "ATEN_CPU_CAPABILITY" in wanted:
        # reading the capability fixes it for the process: from the variable just set, or from an
        # earlier operation of this process under another one
        capability = torch.backends.cpu.get_cpu_capability()
        if capability.lower() != wanted["ATEN_CPU_CAPABILITY"]:
            raise checks.ConfigError(
                "numerics.kernels", f"={kernels} cannot take effect: torch in this process already runs "
                f"{capability} kernels (a job of a sweep under another set, in the same worker?), or this CPU "
                f"lacks {wanted['ATEN_CPU_CAPABILITY'].upper()}; run each kernel set as a sweep of its own")


def separate_compile_cache() -> None:
    """Point inductor's on-disk cache at a directory of the kernel settings in force (ENV_KEYS), if
    any is set and the user chose no cache directory. inductor keys its compiled kernels without
    them: a kernel compiled under one set and loaded under another computed garbage (every member
    of a Table 4 run non-finite at epoch 0: avx2 after native, one thread). Native settings keep
    inductor's own directory."""
    shared = os.path.abspath(default_cache_dir())
    tag = "-".join(os.environ[k] for k in ENV_KEYS if os.environ.get(k))
    if tag and os.path.abspath(os.environ.get("TORCHINDUCTOR_CACHE_DIR", shared)) == shared:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(shared, f"kernels-{tag}")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def record(kernels: str, device: str, dtype: torch.dtype) -> dict:
    """What produces this process's numbers now: the kernel setting, torch's version, the ATen CPU
    capability in force, the MKL and oneDNN settings (None: the library's own choice), the CPU,
    torch's thread count, the device (and the GPU's name on CUDA) and the parameters' dtype."""
    out = {"kernels": kernels, "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "mkl_cbwr": os.environ.get("MKL_CBWR"), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
           "cpu": cpu_model(), "threads": torch.get_num_threads(), "device": device,
           "dtype": str(dtype).removeprefix("torch.")}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
    return out


def describe(numerics: dict) -> str:
    """One phrase for a report header: 'AVX512 kernels (numerics.kernels=native; MKL_CBWR and
    oneDNN ISA unset), torch 2.13.0, Intel(R) Xeon(R) Processor, 1 thread, cpu float32'."""
    env = [f"MKL_CBWR={numerics['mkl_cbwr']}" if numerics.get("mkl_cbwr") else "",
           f"ONEDNN_MAX_CPU_ISA={numerics['onednn_max_cpu_isa']}" if numerics.get("onednn_max_cpu_isa") else ""]
    env_text = ", ".join(e for e in env if e) or "MKL_CBWR and ONEDNN_MAX_CPU_ISA unset"
    threads = numerics.get("threads")
    return (f"{numerics.get('cpu_capability')} kernels (numerics.kernels={numerics.get('kernels')}; {env_text}), "
            f"torch {numerics.get('torch')}, {numerics.get('gpu') or numerics.get('cpu')}, "
            f"{threads} thread{'' if threads == 1 else 's'}, {numerics.get('device')} {numerics.get('dtype')}")
