import os
import platform


def pytest_benchmark_update_machine_info(config, machine_info):
    """What the figures depend on, for reports/benchmarks.md."""
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    machine_info["ablation"] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "onednn": "off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "on",
        "bf16_instructions": [f for f in flags if f in ("avx512_bf16", "amx_bf16")],
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
