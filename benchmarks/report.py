"""Turn pytest-benchmark's JSON into reports/benchmarks.md, with the GPU recipe
section (benchmarks/gpu_recipe.py) when one was measured.

    python -m benchmarks.report [reports/benchmarks.json [reports/backends.json ...]] [--out reports/benchmarks.md]

Several JSON files are read as one run each; the header names the first, and a
benchmark that is in several is taken from the last.
"""
import argparse
import json
from pathlib import Path

from tabulate import tabulate


def rows(benchmarks, kind, columns):
    return [[b["extra_info"].get(c) for c in columns] for b in benchmarks if b["extra_info"].get("kind") == kind]


GPU_SECTION = Path("reports/gpu/gpu_recipe.md")
GPU_COMMAND = "KERAS_BACKEND=jax python -m benchmarks.gpu_recipe --epochs 20"


def render(results: dict, extra_benchmarks: list[dict] = (), gpu_section: str | None = None) -> str:
    machine = results["machine_info"].get("ablation", {})
    # A benchmark measured in several files (the backend one runs in the full suite too) counts once: the last.
    benchmarks = list({b["fullname"]: b for b in [*results["benchmarks"], *extra_benchmarks]}.values())
    lines = ["# Benchmarks", "",
             f"Measured {results['datetime'][:10]} on {machine.get('cpu')} ({machine.get('cores')} cores, "
             f"{machine.get('gpus', 0)} GPUs), TensorFlow {machine.get('tensorflow')}, oneDNN {machine.get('onednn')}, "
             f"bf16 instructions: {', '.join(machine.get('bf16_instructions') or ['none'])}.", "",
             "Reproduce: `python -m pytest benchmarks --benchmark-enable --benchmark-json=reports/benchmarks.json && "
             "python -m benchmarks.report reports/benchmarks.json`", "",
             "## Train step (batch 32, images/s, median of 3 rounds after a warm-up step)", "",
             "`ratio` compares with `keras.applications.ResNet50(weights=None)` on the same input and batch; "
             "GFLOP/s counts 3x the forward FLOPs per image; `of peak` divides by a 2048x2048 fp32 matmul "
             "measured in the same run. At 32x32 keras' ResNet50 keeps its ImageNet stem (7x7/2 + max-pool, a "
             "1x1 final map) while our arms use the 3x3 small-image stem, so only the 128x128 ratios compare like "
             "with like. Our ResNet-50 strides in the 3x3 convolution (torchvision's v1.5, ~6% more FLOPs than "
             "keras' v1).", "",
             tabulate(rows(benchmarks, "train_step", ["arm", "images_per_second", "keras_resnet50_images_per_second",
                                                     "ratio_to_keras_resnet50", "achieved_gflops",
                                                     "matmul_peak_gflops", "fraction_of_peak"]),
                      headers=["arm", "images/s", "keras ResNet50 images/s", "ratio", "GFLOP/s", "matmul GFLOP/s",
                               "of peak"], tablefmt="github"), "",
             "## Input pipeline (decode, resize, augment, batch 128) against the train step it feeds", "",
             tabulate(rows(benchmarks, "input_pipeline", ["dataset", "side", "images", "images_per_second",
                                                         "cached_images_per_second", "fed_arm",
                                                         "train_step_images_per_second", "ratio_to_train_step",
                                                         "cached_ratio_to_train_step"]),
                      headers=["dataset", "side", "images", "first epoch images/s", "cached epochs images/s",
                               "feeds", "train images/s", "first-epoch ratio", "cached ratio"], tablefmt="github"), "",
             "## Peak resident memory of a training process (build + 2 train steps, batch 32)", "",
             tabulate(rows(benchmarks, "peak_memory", ["arm", "peak_rss_mib"]), headers=["arm", "peak RSS MiB"],
                      tablefmt="github"), "",
             "## Options on resnet_cifar20", "",
             tabulate(rows(benchmarks, "option", ["policy", "batch", "images_per_second"]),
                      headers=["dtype policy", "batch", "images/s"], tablefmt="github"), "",
             "## How to spend the cores on a CPU study (resnet_cifar20, batch 128, 12,000 CIFAR-10 images, 2 epochs)",
             "",
             "`python -m stages.train` end to end (input pipeline, fit loop, checkpoints, dvclive; validation passes "
             "excluded), summed over the arms running at once, against the bare `train_on_batch` step of the same "
             "model run as many times at once. The CPU study preset (`studies/cifar10-cpu.yaml`) uses the fastest.",
             "",
             tabulate(rows(benchmarks, "study_throughput", ["setting", "study_images_per_second",
                                                           "train_step_images_per_second", "ratio_to_train_step",
                                                           "wall_seconds"]),
                      headers=["setting", "study images/s", "train step images/s", "ratio", "wall s"],
                      tablefmt="github"), "",
             "## Keras backends on this CPU (resnet_cifar20, batch 128, train step)", "",
             "Each backend in its own process; TensorFlow without XLA, JAX compiled by XLA (its only fast path). "
             "Reproduce: `python -m pytest benchmarks -k backend --benchmark-enable "
             "--benchmark-json=reports/backends.json`. The faster one is the CPU recommendation in the README.", "",
             tabulate(rows(benchmarks, "backend", ["backend", "policy", "images_per_second"]),
                      headers=["backend", "dtype policy", "images/s"], tablefmt="github"), "",
             gpu_section or "## GPU recipe\n\nNo GPU figure has been measured yet. On a GPU machine (no TensorFlow "
             f"needed): `{GPU_COMMAND}`, then rerun this report.\n"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Render benchmark JSON as reports/benchmarks.md.")
    parser.add_argument("sources", nargs="*", type=Path, default=[Path("reports/benchmarks.json")])
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks.md"))
    parser.add_argument("--gpu-section", type=Path, default=GPU_SECTION)
    args = parser.parse_args(argv)
    for source in args.sources:
        if not source.exists():
            raise SystemExit(f"error: {source} not found. Fix: run `python -m pytest benchmarks --benchmark-enable "
                             f"--benchmark-json={source}` first.")
    first, *others = [json.loads(source.read_text()) for source in args.sources]
    gpu = args.gpu_section.read_text() if args.gpu_section.exists() else None
    args.out.write_text(render(first, [b for run in others for b in run["benchmarks"]], gpu))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
