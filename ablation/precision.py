"""The precision a run trains in. `train.mixed_precision: auto` picks what the
machine runs fast: on a GPU, bfloat16 from compute capability 8.0 (Ampere) on
and float16 before it; on a CPU, bfloat16 where it has AVX512-BF16 or AMX, and
float32 elsewhere, where bfloat16 is emulated (measured 7.5-9x slower than
float32 for the CIFAR ResNets on a 2-core AVX2-only AMD EPYC). An explicit
precision the machine emulates runs as asked, after a one-line warning with that
cost and the fix.
"""
from __future__ import annotations

AUTO = "auto"
POLICIES = (AUTO, "float32", "mixed_float16", "mixed_bfloat16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic
EMULATED_COST = "7.5-9x slower than float32 (measured on a 2-core AVX2-only AMD EPYC)"


def cpu_has_bf16(record: dict) -> bool:
    return any(flag in record.get("cpu_flags", []) for flag in NATIVE_BF16_FLAGS)


def gpu_has_bf16(backend: str) -> bool:
    """Whether the first GPU computes in bfloat16 natively (compute capability 8.0 or later)."""
    if backend == "jax":
        import jax
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return bool(gpus) and float(getattr(gpus[0], "compute_capability", "0") or 0) >= 8.0
    if backend == "torch":
        import torch
        return torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0)
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    return bool(gpus) and tuple(tf.config.experimental.get_device_details(gpus[0]).get(
        "compute_capability", (0, 0))) >= (8, 0)


def resolve(policy: str, record: dict) -> str:
    """The Keras dtype policy `policy` means on the machine of `record` (machine.describe)."""
    if policy != AUTO:
        return policy
    if record["gpus"]:
        return "mixed_bfloat16" if gpu_has_bf16(record["backend"]) else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16(record) else "float32"


def emulation_warning(policy: str, record: dict) -> str | None:
    """One line for an explicit half precision that this CPU-only machine emulates."""
    if record["gpus"] or policy not in ("mixed_bfloat16", "mixed_float16"):
        return None
    if policy == "mixed_bfloat16" and cpu_has_bf16(record):
        return None
    return (f"warning: train.mixed_precision={policy} is emulated on this CPU ({record['cpu']}, without "
            f"{' or '.join(NATIVE_BF16_FLAGS) if policy == 'mixed_bfloat16' else 'a float16 unit'}): "
            f"{EMULATED_COST}. Fix: -S train.mixed_precision=auto (float32 here).")
