"""What a run ran on, recorded in its train.json: the things that pick the
numeric kernels (CPU model and the ISA features oneDNN and XLA dispatch on, the
GPU, the Keras backend), the library versions and the thread count.

Two runs of one arm and seed give identical numbers only on the same machine
kind (`kind`): another CPU's bf16 or AVX-512 kernels round differently, so a
rerun there is comparable only statistically (ablation/study/verify.py)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

# /proc/cpuinfo flags that select different matmul/convolution kernels.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                "amx_int8")
LIBRARIES = ("tensorflow", "keras", "jax", "jaxlib", "numpy")


def cpu_kind() -> tuple[str, list[str]]:
    """(model name, kernel-selecting flags) from /proc/cpuinfo; the platform's
    processor string and no flags where there is none (macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    return fields.get("model name", platform.machine()), [flag for flag in KERNEL_FLAGS if flag in flags]


def _gpus(backend: str) -> list[str]:
    if backend == "jax":
        import jax
        return [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    if backend == "torch":
        import torch
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    import tensorflow as tf
    return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(backend: str, threads: int) -> dict:
    """The record a run writes: {cpu, cpu_flags, cores, gpus, backend, threads, versions}."""
    cpu, flags = cpu_kind()
    versions = {name: v for name in LIBRARIES if (v := version(name))}
    return {"cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(), "gpus": _gpus(backend), "backend": backend,
            "threads": threads or os.cpu_count(), "python": platform.python_version(), "versions": versions}


KIND_KEYS = ("cpu", "cpu_flags", "gpus", "backend", "threads")  # a machine record's keys that make its kind


def kind(record: dict | None) -> tuple | None:
    """What must match for identical numbers: CPU model and kernel flags, GPUs,
    backend and thread count (a float sum split over other threads rounds
    otherwise). None for a run recorded before machines were."""
    if not record:
        return None
    return tuple(tuple(record[key]) if isinstance(record[key], list) else record[key] for key in KIND_KEYS)


def differences(recorded: dict, here: dict) -> list[str]:
    """'cpu: AMD EPYC -> Intel Xeon', one per field that differs, versions included."""
    out = []
    for key in (*KIND_KEYS, "python"):
        if recorded.get(key) != here.get(key):
            out.append(f"{key}: {recorded.get(key)} -> {here.get(key)}")
    for name in sorted(set(recorded.get("versions", {})) | set(here.get("versions", {}))):
        old, new = recorded.get("versions", {}).get(name), here.get("versions", {}).get(name)
        if old != new:
            out.append(f"{name}: {old} -> {new}")
    return out


def summary(record: dict | None) -> str:
    """One line: 'AMD EPYC (avx2 fma), no GPU, tensorflow, 1 thread(s)'."""
    if not record:
        return "not recorded"
    gpus = ", ".join(record["gpus"]) or "no GPU"
    return (f"{record['cpu']} ({' '.join(record['cpu_flags']) or 'no listed flags'}), {gpus}, {record['backend']}, "
            f"{record['threads']} thread(s)")
