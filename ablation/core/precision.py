"""The precision a run trains in. `train.mixed_precision: auto` picks what the
machine runs fast: on a GPU, bfloat16 from compute capability 8.0 (Ampere) on
and float16 before it; on a CPU, bfloat16 where it was measured faster than
float32, and float32 elsewhere. Measured on resnet_cifar20 (TensorFlow, oneDNN):
bf16 1.13-1.17x float32 on the Intel Xeon with AMX, 1.18-1.30x on the AMD EPYC
with AVX512-BF16 (reports/benchmarks.md), but 0.73x on an Intel Xeon with
AVX512-BF16 and no AMX (53 against 73 GFLOP/s, --dry-run's probe), and
EMULATED_COST on an AVX2-only EPYC, which emulates it. An explicit precision the machine
emulates runs as asked, after a one-line warning with that cost and the fix.
"""
from __future__ import annotations

AUTO = "auto"
POLICIES = (AUTO, "float32", "mixed_float16", "mixed_bfloat16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic
EMULATED_COST = "0.11-0.12x float32's speed (measured on a 2-core AVX2-only AMD EPYC)"


def cpu_has_bf16(record: dict) -> bool:
    return any(flag in record.get("cpu_flags", []) for flag in NATIVE_BF16_FLAGS)


def cpu_prefers_bf16(record: dict) -> bool:
    """bf16 measured faster than float32: with AMX, or AVX512-BF16 on an AMD CPU (see above)."""
    flags = record.get("cpu_flags", [])
    return "amx_bf16" in flags or ("avx512_bf16" in flags and "AMD" in record.get("cpu", ""))


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
    return "mixed_bfloat16" if cpu_prefers_bf16(record) else "float32"


def emulation_warning(policy: str, record: dict) -> str | None:
    """One line for an explicit half precision that this CPU-only machine emulates."""
    if record["gpus"] or policy not in ("mixed_bfloat16", "mixed_float16"):
        return None
    if policy == "mixed_bfloat16" and cpu_has_bf16(record):
        return None
    return (f"warning: train.mixed_precision={policy} is emulated on this CPU ({record['cpu']}, without "
            f"{' or '.join(NATIVE_BF16_FLAGS) if policy == 'mixed_bfloat16' else 'a float16 unit'}): "
            f"{EMULATED_COST}. Fix: -S train.mixed_precision=auto (float32 here).")
