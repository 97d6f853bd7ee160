import os
from pathlib import Path

from ablation.core.machine import cpu_kind


def pytest_benchmark_update_machine_info(config, machine_info):
    """What the figures depend on, for reports/benchmarks.md."""
    import tensorflow as tf

    cpu, flags = cpu_kind()
    machine_info["ablation"] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "onednn": "off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "on",
        "bf16_instructions": [f for f in flags if f in ("avx512_bf16", "amx_bf16")],
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


def pytest_collection_modifyitems(config, items):
    """With benchmarks disabled (the test suite), each benchmark runs its first
    case only: enough that its code cannot rot, without measuring every arm in
    CI, and each is `slow`. `--benchmark-enable` measures every case."""
    if not config.getoption("benchmark_disable") or config.getoption("benchmark_enable"):
        return
    seen, kept, dropped = set(), [], []
    for item in items:
        if not item.path.is_relative_to(Path(__file__).parent):
            kept.append(item)
            continue
        item.add_marker("slow")  # each trains or times a network: not the contributor's quick lane
        function = (item.path, item.originalname)
        (dropped if function in seen else kept).append(item)
        seen.add(function)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
