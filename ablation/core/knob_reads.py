"""Which knobs a stage really reads: with ABLATION_RECORD_KNOB_READS=1 a stage
records every knob its code reads from the loaded settings into
`.cache/knob-reads/STAGE.json` (merged over runs), so a test can hold the
declarations (each knob's `stages`), dvc.yaml's params and the run fingerprint
to what the code does (tests/e2e/test_knob_reads.py).

A read is an attribute access on a settings object from code that none of the
modules that load, validate, resolve and fingerprint settings called: they touch
knobs as plumbing (validation decides whether a stage starts, never what it writes)."""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import sys
from pathlib import Path

from ablation.core import reading
from ablation.core.params import Params, RunSettings
from ablation.core.sections import SECTIONS

SWITCH = "ABLATION_RECORD_KNOB_READS"
FOLDER = Path(".cache/knob-reads")
# Modules whose accesses are plumbing, not a use: they read every knob by design.
PLUMBING = {"dataclasses", "copy", "ablation.core.params", "ablation.core.sections", "ablation.core.declarations",
            "ablation.core.knob_reads"}


def _keys(cls) -> dict[str, str]:
    """attribute -> the dotted knob key it holds, for a settings class."""
    if cls is RunSettings:  # its knobs resolved for a dataset; its sections record their own reads
        return {item.name: item.metadata["key"] for item in dataclasses.fields(cls)
                if "." in item.metadata.get("key", "")}
    if cls is Params:
        return {"datasets": "datasets"}
    section = next(name for name, section_cls in SECTIONS.items() if section_cls is cls)
    return {item.name: f"{section}.{item.name}" for item in dataclasses.fields(cls)}


def _from_plumbing(frame) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") in PLUMBING:
            return True
        frame = frame.f_back
    return False


def start(stage: str) -> None:
    """Record the knobs read from now on in this process; written at exit."""
    read: set[str] = set()
    for cls in (Params, RunSettings, *SECTIONS.values()):
        keys = _keys(cls)

        def recording(self, name, keys=keys):
            value = object.__getattribute__(self, name)
            if name in keys and not _from_plumbing(sys._getframe(1)):
                read.add(keys[name])
            return value
        cls.__getattribute__ = recording
    atexit.register(_write, stage, read)


def _write(stage: str, read: set[str]) -> None:
    path = FOLDER / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    before = set(reading.read_json(path, "record", "remove it.", optional=True) or ())
    path.write_text(json.dumps(sorted(before | read)))


def start_if_asked(stage: str) -> None:
    if os.environ.get(SWITCH) == "1":
        start(stage)
