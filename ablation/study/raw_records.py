"""A study's committed files under reports/NAME/ besides its report: the raw
results of each run (what the report reads, copied out of the experiment's
commit), and the per-arm numbers and curves DVC shows.

Raw results mirror the experiment's commit, so one reader serves both:
`runs/EXPERIMENT/params.yaml`, `runs/EXPERIMENT/results/DATASET/seedSEED/`
{train.json, live/plots/metrics/*.tsv, eval/metrics.json,
eval/layer_responses.json, eval/predictions.csv} and `reports/metrics.json`,
plus experiment.json (which commit they came from). A file over
COMPRESS_OVER bytes is stored gzipped as NAME.gz (predictions of 10,000 test
images: ~200 KB of CSV)."""
from __future__ import annotations

import copy
import gzip
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from ablation.core import atomic_files, reading
from ablation.core.errors import DataError, UserError
from ablation.core.layout import EXPERIMENT_FILE, PARAMS_FILE, ArmReportFiles, StudyFiles, inside, run_files
from ablation.core.params import Params, ParamsError, with_added_knobs
from ablation.core.precision import AUTO
from ablation.core.run_records import DVCLIVE_FILES, Reader
from ablation.core.yaml_text import parse_yaml_text

COMPRESS_OVER = 64 * 1024
# Params that say where an input lives, not what a run computes: a clone with its
# data elsewhere still reads the committed runs.
WHERE_NOT_WHAT = ("data.paths", "study")
# Params keyed by dataset: a value for a dataset the run does not train on (one
# params.yaml gained later, say) does not change the run.
PER_DATASET = ("data.image_size", "data.augment", "train.per_dataset")


@dataclass(frozen=True)
class Source:
    """Where one experiment's files are read from: its commit, or its raw results."""
    experiment: str
    read: Reader
    origin: str  # "experiment <commit>" or the raw folder
    commit: str | None = None  # the experiment's commit; None for raw results


def raw_paths(datasets, seeds) -> list[str]:
    """Every file of one experiment the study report reads, relative to the project."""
    paths = [PARAMS_FILE, ArmReportFiles().metrics.as_posix()]
    for dataset in datasets:
        for seed in seeds:
            run = run_files(dataset, seed)
            paths += [run.train_metrics.as_posix(), run.eval_metrics.as_posix(), run.layer_responses.as_posix(),
                      run.predictions.as_posix()]
            paths += [f"{run.live.as_posix()}/plots/metrics/{file}.tsv" for file in DVCLIVE_FILES.values()]
    return paths


def raw_reader(directory: Path) -> Reader:
    """read(path) of an experiment's raw results (NAME or NAME.gz); None when absent.
    Paths go through `inside`: a cloned folder's symlink cannot make it read elsewhere."""
    def read(path: str) -> str | None:
        full = inside(directory, path)
        restore = f"restore it (`git checkout -- {full}`)."
        if full.is_file():
            return reading.read_text(full, "record", restore)
        packed = inside(directory, path + ".gz")
        restore = f"restore it (`git checkout -- {packed}`)."
        data = reading.read_bytes(packed, "record", restore, optional=True)
        if data is None:
            return None
        limit = reading.LIMITS["record"]
        try:  # inflated with the same bound: a gzip bomb stops here
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                data = handle.read(limit + 1)
        except (OSError, EOFError) as error:
            raise DataError(f"{packed} is not a readable gzip file ({error}). Fix: {restore}") from None
        if len(data) > limit:
            raise DataError(f"{packed} inflates to over {limit:,} bytes, more than a raw result holds. Fix: {restore}")
        return reading.decode(data, str(packed), restore)
    return read


def train_records(out: StudyFiles) -> list[dict]:
    """The train.json records of a study's raw results so far, every experiment's
    (unreadable ones are skipped here: the report says what is wrong with them)."""
    records = []
    for folder in sorted(out.runs.iterdir()) if out.runs.is_dir() else ():
        read = raw_reader(folder)
        for found in sorted(folder.glob("results/*/seed*/train.json*")):
            try:
                text = read(found.relative_to(folder).as_posix().removesuffix(".gz"))
                records.append(reading.parse_json(text or "null", str(found), "") or {})
            except UserError:
                continue
    return records


def _node(raw: dict, dotted: str):
    for key in dotted.split("."):
        raw = raw.get(key, {}) if isinstance(raw, dict) else {}
    return raw


def comparable(raw: dict) -> dict:
    """params without the keys that say where, not what (WHERE_NOT_WHAT), and without
    the per-dataset values (PER_DATASET) of datasets the run does not train on."""
    out = copy.deepcopy(raw)
    for dotted in WHERE_NOT_WHAT:
        parent, _, last = dotted.rpartition(".")
        if isinstance(node := _node(out, parent) if parent else out, dict):
            node.pop(last, None)
    used = set(out.get("datasets") or [])
    for dotted in PER_DATASET:
        if isinstance(node := _node(out, dotted), dict):
            for dataset in set(node) - used:
                node.pop(dataset)
    return out


def _flat(raw, prefix="") -> dict:
    if isinstance(raw, dict):
        return {k: v for key, value in raw.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): raw}


def params_differ(text: str | None, expected: Params, origin: str) -> list[str]:
    """The keys whose value in params text `text` differs from `expected` (empty: the
    same run); ['params.yaml missing'] when there is none. A precision of `auto`
    expected matches any recorded one: auto is what the machine runs fast, and the
    run's train.json says what ran, as its machine record says where."""
    if text is None:
        return ["params.yaml missing"]
    found = _flat(comparable(with_added_knobs(parse_yaml_text(text, origin))))
    wanted = _flat(comparable(expected.raw))
    return sorted(key for key in found.keys() | wanted.keys() if found.get(key) != wanted.get(key)
                  and not (key.endswith("mixed_precision") and wanted.get(key) == AUTO))


def recorded_precision(text: str | None) -> str | None:
    """The explicit precision a run's params.yaml asked for (None for auto or none): what
    ran, for runs recorded before train.json said so."""
    if text is None:
        return None
    value = ((parse_yaml_text(text, "params.yaml") or {}).get("train") or {}).get("mixed_precision")
    return value if isinstance(value, str) and value != AUTO else None


def write_raw(source: Source, datasets, seeds, out: StudyFiles, details: dict) -> Path:
    """Copies one experiment's raw results into the study folder, replacing the
    previous copy whole; `details` (commit, baseline, arm, overrides) goes into
    experiment.json."""
    target = out.run(source.experiment)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    for path in raw_paths(datasets, seeds):
        text = source.read(path)
        if text is None:
            continue
        data = text.encode()
        name = path + ".gz" if len(data) > COMPRESS_OVER else path
        destination = staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0: the same results give the same bytes, so git sees no change
        destination.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    atomic_files.write_json(staging / EXPERIMENT_FILE, {"experiment": source.experiment, **details})
    atomic_files.replace_dir(staging, target)
    return target


def arms_with_results(out: StudyFiles) -> set[str]:
    """The arms the study's metrics.json has numbers for: it lists the arms that left
    results, and none that failed (none at all before the study's first report)."""
    if not out.metrics.exists():
        return set()
    recorded = reading.read_json(out.metrics, "record", f"restore it (`git checkout -- {out.metrics}`).")
    return set(recorded) if isinstance(recorded, dict) else set()


def definition(study_arms: list, overrides: list[str]) -> dict:
    """What makes a study this study: its arms (names and grid values) and the -S values
    every arm shares, less the seeds (more seeds extend a study) and where data lives."""
    def what(override: str) -> bool:
        key = override.partition("=")[0]
        return key != "train.seeds" and not any(key == w or key.startswith(f"{w}.") for w in WHERE_NOT_WHAT)
    return {"set": sorted(o for o in overrides if what(o)),
            "arms": {arm.name: [o for o in arm.overrides if what(o)] for arm in study_arms}}


def check_owner(out: StudyFiles, definition: dict, replace: bool) -> None:
    """A study writes only a folder of its own: one that holds another study (another
    definition in its study.json, or, for a folder from before study.json, a report with
    arms this study does not have) is refused, unless `replace`, before anything runs."""
    if replace or not out.report.exists():
        return
    if out.owner.exists():
        recorded = reading.read_json(out.owner, "record", f"restore it (`git checkout -- {out.owner}`).")
        theirs = recorded.get("definition") if isinstance(recorded, dict) else None
        other = theirs != definition
    else:  # its metrics.json lists the arms that have results: another study's, unless all are this one's
        theirs = {"arms": sorted(arms_with_results(out))}
        other = not set(theirs["arms"]) <= set(definition["arms"])
    if other:
        raise ParamsError(f"{out.dir} holds another study ({_describe(theirs)}), not this one "
                          f"({_describe(definition)}), and a study never replaces another's folder. Fix: pass --name "
                          "with a folder of its own, or --replace-report to replace that study.")


def _describe(definition) -> str:
    if not isinstance(definition, dict):
        return "an unreadable definition"
    arms = ", ".join(definition.get("arms", []))
    return f"arms {arms}" + (f"; -S {' '.join(definition['set'])}" if definition.get("set") else "")


def record_owner(out: StudyFiles, definition: dict, looks: tuple[int, ...] | None = None) -> None:
    """study.json: which study the folder holds (check_owner) and, for a study run in
    rounds (--until-decided), the seeds per arm at each look its verdicts follow."""
    atomic_files.write_json(out.owner, {"definition": definition, **({"looks": list(looks)} if looks else {})})


def recorded_looks(out: StudyFiles) -> tuple[int, ...] | None:
    """The looks of a study run in rounds, from its study.json (None: a fixed design)."""
    if not out.owner.exists():
        return None
    recorded = reading.read_json(out.owner, "record", f"restore it (`git checkout -- {out.owner}`).")
    looks = recorded.get("looks") if isinstance(recorded, dict) else None
    valid = isinstance(looks, list) and looks and all(isinstance(n, int) and n > 0 for n in looks) \
        and looks == sorted(set(looks))
    if looks is not None and not valid:
        raise ParamsError(f"{out.owner}: `looks` is {looks!r}, not an increasing list of seed counts. Fix: restore "
                          f"it (`git checkout -- {out.owner}`).")
    return tuple(looks) if looks else None
