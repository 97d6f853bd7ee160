"""The one door for every file and command output the suite reads from a user- or
clone-supplied place: params files, presets, a study's files, raw records,
experiment commits (`git show`), archive headers. What comes through it is a
regular file (not a device, FIFO or folder), no larger than its kind's bound
(checked before reading, and the read itself stops one byte past it), UTF-8
text, and, once parsed, nested no deeper than MAX_DEPTH with no integer longer
than MAX_INT_DIGITS digits. Anything else is a one-line UserError naming the
file and the fix. tests/core/test_reading.py finds reads that bypass it."""
from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path

from ablation.core.errors import DataError

MIB = 2**20
# Bytes a file of each kind may hold: ten times the largest one this suite writes
# (a params.yaml is ~10 KB; 10,000 test predictions are ~400 KB of CSV; a split
# manifest of 25,000 images ~1 MB).
LIMITS = {"params": 1 * MIB, "record": 32 * MIB, "command": 64 * MIB, "manifest": 256 * MIB}
MAX_DEPTH = 64  # nesting of a parsed file: params are 4 deep, records 3
MAX_INT_DIGITS = 30  # past any seed, size or count, and far short of Python's 4,300-digit conversion limit
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: str | Path, kind: str, fix: str, error=DataError, optional: bool = False) -> bytes | None:
    """The bytes of regular file `path`, at most LIMITS[kind]; None for a missing file
    when `optional`. Opened without blocking, so a FIFO is refused, not waited on."""
    path = Path(path)
    limit = LIMITS[kind]
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if optional:
            return None
        raise error(f"{path} is missing. Fix: {fix}") from None
    except OSError as failure:
        raise error(f"{path} cannot be read ({failure.strerror}). Fix: {fix}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise error(f"{path} is {_kind(status.st_mode)}, not a regular file. Fix: {fix}")
    with os.fdopen(descriptor, "rb") as handle:
        data = b"" if status.st_size > limit else handle.read(limit + 1)
    if status.st_size > limit or len(data) > limit:
        raise error(f"{path} is over {limit:,} bytes, more than a {kind} file of this suite holds. Fix: {fix}")
    return data


def decode(data: bytes, origin: str, fix: str, error=DataError) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as failure:
        raise error(f"{origin} is not UTF-8 text (byte {failure.start}). Fix: {fix}") from None


def read_text(path: str | Path, kind: str, fix: str, error=DataError, optional: bool = False) -> str | None:
    data = read_bytes(path, kind, fix, error, optional)
    return None if data is None else decode(data, str(path), fix, error)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-')):,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def check_bounds(value, origin: str, fix: str, error=DataError):
    """`value` itself, once no container in it is nested deeper than MAX_DEPTH and no
    integer has more than MAX_INT_DIGITS digits (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise error(f"{origin} is nested more than {MAX_DEPTH} levels deep. Fix: {fix}")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**MAX_INT_DIGITS:
            raise error(f"{origin} holds an integer of more than {MAX_INT_DIGITS} digits. Fix: {fix}")
        if isinstance(item, dict):
            pending += [(v, depth + 1) for pair in item.items() for v in pair]
        elif isinstance(item, (list, tuple)):
            pending += [(v, depth + 1) for v in item]
    return value


def parse_json(text: str, origin: str, fix: str, error=DataError):
    """JSON within the bounds; one-line `error` naming `origin` and `fix` otherwise."""
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as failure:
        raise error(f"{origin} is not valid JSON ({failure.msg} at line {failure.lineno}): truncated or damaged. "
                    f"Fix: {fix}") from None
    except ValueError as failure:
        raise error(f"{origin} holds {failure}. Fix: {fix}") from None
    except RecursionError:
        raise error(f"{origin} is nested more than {MAX_DEPTH} levels deep. Fix: {fix}") from None
    return check_bounds(value, origin, fix, error)


def read_json(path: str | Path, kind: str, fix: str, error=DataError, optional: bool = False):
    text = read_text(path, kind, fix, error, optional)
    return None if text is None else parse_json(text, str(path), fix, error)


def csv_rows(text: str | None, delimiter: str = ",") -> list[dict]:
    """The rows of CSV text as the csv module wrote it: a quoted field may hold a
    newline (a class named so), which splitting the text into lines would cut."""
    return list(csv.DictReader(io.StringIO(text or "", newline=""), delimiter=delimiter))


def csv_text(rows) -> str:
    """The CSV text of `rows` that csv_rows reads back as written. csv's minimal quoting
    leaves a field with a carriage return (a class folder so named) unquoted, and a
    reader ends the row there; such a file is written fully quoted instead."""
    rows = [list(map(str, row)) for row in rows]
    quoting = csv.QUOTE_ALL if any("\r" in field for row in rows for field in row) else csv.QUOTE_MINIMAL
    text = io.StringIO()
    csv.writer(text, lineterminator="\n", quoting=quoting).writerows(rows)
    return text.getvalue()


def command_output(command: list[str], kind: str = "command", cwd=None, env=None) -> subprocess.CompletedProcess:
    """`command`'s stdout (text) and exit code, reading at most LIMITS[kind] bytes of it:
    a command printing an experiment's 1 GiB file is stopped there. A larger output
    becomes returncode -1 with an empty stdout and the bound in stderr."""
    limit = LIMITS[kind]
    # stderr goes to a file, not a second pipe: a full, unread pipe would stall the command
    with tempfile.TemporaryFile() as errors, subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                               stderr=errors) as process:
        data = process.stdout.read(limit + 1)
        if len(data) > limit:
            process.kill()
        process.wait()
        errors.seek(0)
        said = errors.read(64 * 1024).decode("utf-8", errors="replace")
    if len(data) > limit:
        return subprocess.CompletedProcess(command, -1, "", f"output over {limit:,} bytes")
    return subprocess.CompletedProcess(command, process.returncode, data.decode("utf-8", errors="replace"), said)
