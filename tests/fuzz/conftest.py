"""What every door of the fuzz suite asserts, once: the call ends normally, or with
a UserError of one line that names a fix (what `ablate` prints as `error: ...`
and exit 2); no other exception (a traceback); memory within MEMORY_BOUND of
what the process held before (RLIMIT_AS: past it an allocation fails with
MemoryError, which fails the test); nothing written beside the project folder
the call runs in."""
import contextlib
import os
import resource

import pytest
from hypothesis import HealthCheck, settings

from ablation.core.errors import UserError

MEMORY_BOUND = 1 << 30  # bytes of address space a single hostile input may add
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=20: the long run


def examples(count: int) -> settings:
    """Hypothesis settings of `count` examples (times FUZZ_SCALE), no per-example deadline
    (a first example pays for imports)."""
    return settings(max_examples=count * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _address_space() -> int:
    with open("/proc/self/statm") as statm:  # the test's own process, not an input
        return int(statm.read().split()[0]) * resource.getpagesize()


@contextlib.contextmanager
def memory_bound(extra: int = MEMORY_BOUND):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def knocks(call, *args, **kwargs):
    """call(*args, **kwargs) under the memory bound: its result, or None after a clean
    one-line UserError; anything else fails the test with its traceback."""
    with memory_bound():
        try:
            return call(*args, **kwargs)
        except UserError as error:
            message = str(error)
            assert "\n" not in message and "Fix" in message, message
            return None


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A project folder to run in; afterwards nothing may have appeared beside it."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    yield project
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
