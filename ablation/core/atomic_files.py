"""Writing outputs so that a failed, killed or disk-full stage leaves the previous
ones as they were, and reading them back with one clear error when they are
damaged. Every output goes to a temporary name beside its final path and is
renamed into place (atomic on POSIX) only once complete. Reading them back goes
through the one reader (reading.py)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator


def partial_path(path: Path) -> Path:
    """The temporary name of `path` while it is written: hidden, same directory
    (so the rename is atomic) and same suffix (Keras and matplotlib pick the
    format from it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


# Outputs finished inside all_or_nothing(), held under their temporary names:
# (temporary, final path). None outside it. One stage runs per process.
_held: list[tuple[Path, Path]] | None = None


def _remove(temporary: Path) -> None:
    if temporary.exists():
        shutil.rmtree(temporary) if temporary.is_dir() else temporary.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write `path` through; renamed into place when the
    block ends without an error (inside all_or_nothing: when that ends), removed
    otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(path)
    done = False
    try:
        yield temporary
        done = True
        if _held is None:
            os.replace(temporary, path)
        else:
            _held.append((temporary, path))
    finally:
        if not done or _held is None:
            _remove(temporary)


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """A stage's outputs appear together when the block ends without an error, or
    none of them: a stage that fails after writing one output (its figure, say)
    leaves no finished-looking other."""
    global _held
    _held = []
    try:
        yield
        for temporary, path in _held:
            os.replace(temporary, path)
    finally:
        for temporary, _ in _held:
            _remove(temporary)
        _held = None


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename makes it the output


def write_json(path: str | Path, value) -> None:
    write_text(path, json.dumps(value, indent=2) + "\n")


def replace_dir(new: Path, path: Path) -> None:
    """Puts the complete directory `new` at `path`, the previous one removed only
    after the swap: an interruption leaves `path` or its `.previous` copy."""
    previous = path.with_name(f".{path.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if path.exists():
        path.rename(previous)
    new.rename(path)
    shutil.rmtree(previous, ignore_errors=True)


def restore_interrupted_swap(path: Path) -> None:
    """After a swap killed between its two renames, the previous directory is back."""
    previous = path.with_name(f".{path.name}.previous")
    if previous.exists() and not path.exists():
        previous.rename(path)

