"""benchmarks/report.py merges several pytest-benchmark JSON files into one report."""
from benchmarks.report import render, update


def backend_run(images_per_second: float) -> dict:
    return {"fullname": "benchmarks/test_throughput.py::test_backend_train_step[resnet_cifar20-float32-jax]",
            "extra_info": {"kind": "backend", "arm": "resnet_cifar20", "backend": "jax", "policy": "float32",
                           "images_per_second": images_per_second}}


def test_a_benchmark_in_several_files_counts_once_from_the_last():
    first = {"datetime": "2026-11-30T16:00:00", "machine_info": {}, "benchmarks": [backend_run(111.0)]}
    text = render(first, [backend_run(222.0)])
    assert "222" in text and "111" not in text
    assert text.count("| jax ") == 1


def sizing_run(rate: float) -> dict:
    return {"fullname": "benchmarks/test_study_throughput.py::test_cats_vs_dogs_sizing[34-32px-b128]",
            "extra_info": {"kind": "cats_vs_dogs_sizing", "depth": 34, "side": 32, "batch": 128,
                           "residual_images_per_second": rate, "plain_images_per_second": rate + 1}}


def test_update_replaces_only_the_sections_a_rerun_measured_and_says_where():
    first = {"datetime": "2026-11-30T16:00:00", "benchmarks": [backend_run(111.0), sizing_run(50.0)],
             "machine_info": {"ablation": {"cpu": "AMD EPYC", "cores": 2}}}
    rerun = {"datetime": "2026-12-02T23:00:00", "benchmarks": [sizing_run(90.7)],
             "machine_info": {"ablation": {"cpu": "Intel Xeon", "cores": 2, "bf16_instructions": ["amx_bf16"]}}}
    before = render(first)
    after = update(before, rerun)
    sizing = after.split("## Sizing", 1)[1].split("\n## ", 1)[0]
    assert "| jax " in after and "111" in after  # the backend section is kept
    assert "90.7" in sizing and "50.0" not in sizing and " 50 " not in sizing
    assert "Measured 2026-12-02 on Intel Xeon (2 cores, 0 GPUs)" in sizing and "amx_bf16" in sizing
    assert after.startswith(before.split("\n## ", 1)[0])  # the header names the first run still
    assert update(after, rerun) == after  # an update is idempotent


def test_backend_tables_are_kept_per_machine_kind():
    def on(cpu, bf16, rate, day):
        return {"datetime": f"2026-12-0{day}T10:00:00", "benchmarks": [backend_run(rate)],
                "machine_info": {"ablation": {"cpu": cpu, "cores": 2, "bf16_instructions": bf16}}}
    report = render(on("Intel Xeon", ["avx512_bf16"], 111.0, 1))
    assert "## Keras backends, train step at batch 128 on 32x32 images: Intel Xeon with avx512_bf16" in report
    both = update(report, on("AMD EPYC", [], 222.0, 2))  # another kind: a table of its own beside the first
    assert "Intel Xeon with avx512_bf16" in both and "AMD EPYC with no bf16 instructions" in both
    assert "111" in both and "222" in both
    amx = update(both, on("Intel Xeon", ["avx512_bf16", "amx_bf16"], 333.0, 3))  # one model name, another kind
    assert amx.count("## Keras backends") == 3
    again = update(amx, on("AMD EPYC", [], 444.0, 4))  # the same kind again: its table replaced
    assert again.count("## Keras backends") == 3 and "444" in again and "222" not in again and "111" in again
