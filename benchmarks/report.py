"""Turn pytest-benchmark's JSON into reports/benchmarks.md, with the GPU recipe
section (benchmarks/gpu_recipe.py) when one was measured.

    python -m benchmarks.report [reports/benchmarks.json [reports/backends.json ...]] [--out reports/benchmarks.md]
    python -m benchmarks.report reports/cats_vs_dogs_sizing.json --update

Several JSON files are read as one run each; the header names the first, and a
benchmark that is in several is taken from the last. With --update, one JSON
(a rerun of some benchmarks, perhaps on another machine) replaces only the
sections it has figures for, each under the line naming where it was measured.
"""
import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from ablation.core.layout import GPU_REPORTS


def rows(benchmarks, kind, columns):
    return [[b["extra_info"].get(c) for c in columns] for b in benchmarks if b["extra_info"].get("kind") == kind]


GPU_SECTION = GPU_REPORTS / "gpu_recipe.md"
GPU_COMMAND = "KERAS_BACKEND=jax python -m benchmarks.gpu_recipe --epochs 20"


@dataclass(frozen=True)
class Section:
    """One table of the report: the benchmarks of one `extra_info["kind"]`. A section
    `per_machine` (its heading ends with a colon) has one table per machine kind: a
    rerun elsewhere adds its own and replaces only the one of its kind."""
    heading: str
    intro: str
    columns: tuple  # (extra_info key, column header)
    per_machine: bool = False

    def heading_on(self, results: dict) -> str:
        return f"{self.heading} {machine_kind(results)}" if self.per_machine else self.heading


SECTIONS = {
    "train_step": Section(
        "Train step (batch 32, images/s, median of 3 rounds after a warm-up step)",
        "`ratio` compares with `keras.applications.ResNet50(weights=None)` on the same input and batch; "
        "GFLOP/s counts 3x the forward FLOPs per image; `of peak` divides by a 2048x2048 fp32 matmul "
        "measured in the same run. At 32x32 keras' ResNet50 keeps its ImageNet stem (7x7/2 + max-pool, a "
        "1x1 final map) while our arms use the 3x3 small-image stem, so only the 128x128 ratios compare like "
        "with like. Our ResNet-50 strides in the 3x3 convolution (torchvision's v1.5, ~6% more FLOPs than "
        "keras' v1).",
        (("arm", "arm"), ("images_per_second", "images/s"),
         ("keras_resnet50_images_per_second", "keras ResNet50 images/s"), ("ratio_to_keras_resnet50", "ratio"),
         ("achieved_gflops", "GFLOP/s"), ("matmul_peak_gflops", "matmul GFLOP/s"), ("fraction_of_peak", "of peak"))),
    "input_pipeline": Section(
        "Input pipeline (decode, resize, augment, batch 128) against the train step it feeds", "",
        (("dataset", "dataset"), ("side", "side"), ("images", "images"), ("images_per_second", "first epoch images/s"),
         ("cached_images_per_second", "cached epochs images/s"), ("fed_arm", "feeds"),
         ("train_step_images_per_second", "train images/s"), ("ratio_to_train_step", "first-epoch ratio"),
         ("cached_ratio_to_train_step", "cached ratio"))),
    "peak_memory": Section("Peak resident memory of a training process (build + 2 train steps, batch 32)", "",
                           (("arm", "arm"), ("peak_rss_mib", "peak RSS MiB"))),
    "stage_memory": Section(
        "Peak resident memory of evaluate against training (CIFAR-sized images)",
        "Each in a fresh process: evaluate's passes (predict on 10,000 test images at batch 256, then the layer "
        "responses of 2,000 at evaluate.RESPONSE_BATCH) against two train steps at the CPU study's batch of "
        "128. Reproduce: `python -m pytest benchmarks -k evaluate_peak --benchmark-enable "
        "--benchmark-json=reports/stage_memory.json && python -m benchmarks.report reports/stage_memory.json "
        "--update`.",
        (("arm", "arm"), ("evaluate_peak_rss_mib", "evaluate peak RSS MiB"),
         ("train_peak_rss_mib", "training peak RSS MiB"))),
    "option": Section("Options on resnet_cifar20", "",
                      (("policy", "dtype policy"), ("batch", "batch"), ("images_per_second", "images/s"))),
    "study_throughput": Section(
        "How to spend the cores on a CPU study (resnet_cifar20, batch 128, 12,000 CIFAR-10 images, 2 epochs)",
        "`ablate train` end to end (input pipeline, fit loop, checkpoints, dvclive; validation passes "
        "excluded), summed over the arms running at once, against the bare `train_on_batch` step of the same "
        "model run as many times at once. The CPU study preset (`studies/cifar10-cpu.yaml`) uses the fastest.",
        (("setting", "setting"), ("study_images_per_second", "study images/s"),
         ("train_step_images_per_second", "train step images/s"), ("ratio_to_train_step", "ratio"),
         ("wall_seconds", "wall s"))),
    "builder_speed": Section(
        "A network as a user's builder against the same network built in (mixed_bfloat16, images/s)",
        "`ablate train` end to end as in the section above, resnet_cifar20 once from the suite's table and once "
        "as `model.arch: nets.resnet20:build` (a builder returning the same net), each twice, alternating. "
        "`run to run` is the larger of the two ways' own differences between their runs: a ratio within it is "
        "noise. Reproduce: `python -m pytest benchmarks -k builder_trains --benchmark-enable "
        "--benchmark-json=reports/builder_speed.json && python -m benchmarks.report reports/builder_speed.json "
        "--update`.",
        (("arm", "arm"), ("built_in_images_per_second", "built in"), ("builder_images_per_second", "as a builder"),
         ("ratio", "ratio"), ("run_to_run", "run to run"))),
    "cats_vs_dogs_sizing": Section(
        "Sizing the cats_vs_dogs CPU study (ResNet-34/50, option B, ImageNet stem, mixed_bfloat16, images/s)",
        "`ablate train` end to end (2 epochs of the 2,880 training images of the cats_vs_dogs sample, "
        "tracing included, validation passes excluded) for each net's residual and plain twins at once, one "
        "thread each, as the study's two queue workers run them. `studies/cats-vs-dogs-cpu.yaml` takes its image "
        "side, batch and epochs from these. Reproduce: `python -m pytest benchmarks -k cats_vs_dogs_sizing "
        "--benchmark-enable --benchmark-json=reports/cats_vs_dogs_sizing.json && python -m benchmarks.report "
        "reports/cats_vs_dogs_sizing.json --update`.",
        (("depth", "depth"), ("side", "side"), ("batch", "batch"),
         ("residual_images_per_second", "residual images/s"), ("plain_images_per_second", "plain images/s"))),
    "backend": Section(
        "Keras backends, train step at batch 128 on 32x32 images:",
        "Each backend in its own process; TensorFlow without XLA, JAX compiled by XLA (its only fast path), "
        "torch eager with OMP_WAIT_POLICY=PASSIVE. Reproduce: `python -m pytest benchmarks -k \"backend_train_step "
        "and float32\" --benchmark-enable --benchmark-json=reports/backends.json && python -m benchmarks.report "
        "reports/backends.json --update` (drop `and float32` for the bf16 rows too). "
        "`ablate study --backend auto` measures the same way at its start and runs the study on the fastest.",
        (("arm", "arm"), ("backend", "backend"), ("policy", "dtype policy"), ("images_per_second", "images/s")),
        per_machine=True),
}


def machine_kind(results: dict) -> str:
    """The CPU and the bf16 instructions that pick its kernels (one model name covers
    Xeons with and without AMX)."""
    machine = results["machine_info"].get("ablation", {})
    return f"{machine.get('cpu')} with {', '.join(machine.get('bf16_instructions') or ['no bf16 instructions'])}"


def measured_on(results: dict) -> str:
    machine = results["machine_info"].get("ablation", {})
    return (f"Measured {results['datetime'][:10]} on {machine.get('cpu')} ({machine.get('cores')} cores, "
            f"{machine.get('gpus', 0)} GPUs), TensorFlow {machine.get('tensorflow')}, oneDNN {machine.get('onednn')}, "
            f"bf16 instructions: {', '.join(machine.get('bf16_instructions') or ['none'])}.")


def render_section(kind: str, benchmarks: list[dict], results: dict, machine_line: str | None = None) -> str:
    """'## heading' and its table, measured in `results`; `machine_line` where the
    section was measured apart from the report's header."""
    section = SECTIONS[kind]
    keys, headers = zip(*section.columns)
    parts = [f"## {section.heading_on(results)}", "", *([machine_line, ""] if machine_line else []),
             *([section.intro, ""] if section.intro else []),
             tabulate(rows(benchmarks, kind, keys), headers=headers, tablefmt="github"), ""]
    return "\n".join(parts)


def _gpu(gpu_section: str | None) -> str:
    return gpu_section or ("## GPU recipe\n\nNo GPU figure has been measured yet. On a GPU machine (no TensorFlow "
                           f"needed): `{GPU_COMMAND}`, then rerun this report.\n")


def render(results: dict, extra_benchmarks: list[dict] = (), gpu_section: str | None = None) -> str:
    # A benchmark measured in several files (the backend one runs in the full suite too) counts once: the last.
    benchmarks = list({b["fullname"]: b for b in [*results["benchmarks"], *extra_benchmarks]}.values())
    lines = ["# Benchmarks", "", measured_on(results), "",
             "Reproduce: `python -m pytest benchmarks --benchmark-enable --benchmark-json=reports/benchmarks.json && "
             "python -m benchmarks.report reports/benchmarks.json`", "",
             *(render_section(kind, benchmarks, results) for kind in SECTIONS), _gpu(gpu_section)]
    return "\n".join(lines)


def _split_sections(text: str) -> tuple[str, dict[str, str]]:
    """(what precedes the first '## ', {heading: the section's text})."""
    head, *sections = text.split("\n## ")
    return head, {section.split("\n", 1)[0]: "## " + section for section in sections}


def update(existing: str, results: dict, gpu_section: str | None = None) -> str:
    """The report `existing` with each section that `results` (one run) has rows
    for measured anew, under its own 'Measured on' line; the other sections as
    they were."""
    head, old = _split_sections(existing)
    kinds = {b["extra_info"].get("kind") for b in results["benchmarks"]}
    parts = [head.rstrip("\n") + "\n"]
    for kind, section in SECTIONS.items():
        new = section.heading_on(results) if kind in kinds else None
        kept = [heading for heading in old if heading != new and (
            heading.startswith(section.heading) if section.per_machine else heading == section.heading)]
        parts += [old[heading].rstrip("\n") + "\n" for heading in kept]
        if new:
            parts.append(render_section(kind, results["benchmarks"], results, measured_on(results)))
    gpu_old = next((text for heading, text in old.items() if heading.startswith("GPU")), None)
    parts.append(gpu_section or gpu_old or _gpu(None))
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Render benchmark JSON as reports/benchmarks.md.")
    parser.add_argument("sources", nargs="*", type=Path, default=[Path("reports/benchmarks.json")])
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks.md"))
    parser.add_argument("--gpu-section", type=Path, default=GPU_SECTION)
    parser.add_argument("--update", action="store_true",
                        help="replace only the sections SOURCE has figures for in the existing --out")
    args = parser.parse_args(argv)
    for source in args.sources:
        if not source.exists():
            parser.exit(2, f"error: {source} not found. Fix: run `python -m pytest benchmarks --benchmark-enable "
                           f"--benchmark-json={source}` first.\n")
    if args.update and (len(args.sources) != 1 or not args.out.exists()):
        parser.exit(2, f"error: --update takes one SOURCE and an existing {args.out}. Fix: name one JSON file, or "
                       "drop --update to write the whole report.\n")
    first, *others = [json.loads(source.read_text()) for source in args.sources]
    gpu = args.gpu_section.read_text() if args.gpu_section.exists() else None
    text = update(args.out.read_text(), first, gpu) if args.update else \
        render(first, [b for run in others for b in run["benchmarks"]], gpu)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
