"""benchmarks/report.py merges several pytest-benchmark JSON files into one report."""
from benchmarks.report import render


def backend_run(images_per_second: float) -> dict:
    return {"fullname": "benchmarks/test_throughput.py::test_backend_resnet_cifar20[float32-jax]",
            "extra_info": {"kind": "backend", "backend": "jax", "policy": "float32",
                           "images_per_second": images_per_second}}


def test_a_benchmark_in_several_files_counts_once_from_the_last():
    first = {"datetime": "2026-11-30T16:00:00", "machine_info": {}, "benchmarks": [backend_run(111.0)]}
    text = render(first, [backend_run(222.0)])
    assert "222" in text and "111" not in text
    assert text.count("| jax ") == 1
