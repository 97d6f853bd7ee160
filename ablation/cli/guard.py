"""How every `ablate` command ends: a UserError (bad params or data, a cluster not
ready) as its one-line message and exit 2, as a full or read-only disk and a damaged
shard are; Ctrl-C as what is kept. Light: `ablate init` and `--help` load no Keras."""
from __future__ import annotations

import errno
import os
import signal
import sys

from ablation.core import knob_reads
from ablation.core.errors import ParamsError, UserError

DVC_EXPERIMENT = "DVC_EXP_BASELINE_REV"  # set by `dvc exp run` for the stages it runs (dvc/env.py)

# OSErrors of the machine, not of an input: said in one line with the fix, since
# every output is written atomically and the previous ones are still in place.
DISK_FIXES = {
    errno.ENOSPC: "free disk space", errno.EDQUOT: "free disk space or raise the quota",
    errno.EFBIG: "free disk space or raise the file-size limit (ulimit -f)",
    errno.EROFS: "run where the project is writable", errno.EACCES: "make the project writable by this user",
    errno.EPERM: "make the project writable by this user",
}


def _is_data_loss(error: BaseException) -> bool:
    tf = sys.modules.get("tensorflow")  # only a command that loaded it can meet its errors
    return tf is not None and isinstance(error, tf.errors.DataLossError)


def _is_failed_write(error: BaseException) -> bool:
    return isinstance(error, (OSError, RuntimeError)) and "write failed" in str(error)


# h5py reports a failed write once more from every object it frees while the
# error unwinds (through both hooks); the one error line says it.
def _quiet_unraisable(unraisable) -> None:
    if not _is_failed_write(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def _quiet_excepthook(kind, value, traceback) -> None:
    if not _is_failed_write(value):
        sys.__excepthook__(kind, value, traceback)


def _restore_hint(error: UserError) -> str:
    """Inside `dvc exp run -S ...` DVC has rewritten params.yaml (its comments dropped) and
    removed the stage's outputs before the stage refused the params: how to put both back."""
    if not isinstance(error, ParamsError) or not os.environ.get(DVC_EXPERIMENT):
        return ""
    return (" DVC wrote the experiment's values into params.yaml (dropping its comments) and removed this stage's "
            "outputs before it ran: `git checkout -- params.yaml && dvc checkout` puts both back as committed.")


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `dvc queue kill`, a container stopping), unwound as Ctrl-C is:
    staging folders and unfinished outputs are cleaned on the way out."""


def _terminate(signum, frame):
    raise Terminated()


def main_guarded(main, command: str) -> None:
    """Runs main() of `ablate command`; a UserError (bad params or data, a cluster not
    ready) ends the process with its message and exit code 2, as do a damaged shard
    and a full or read-only disk."""
    sys.unraisablehook, sys.excepthook = _quiet_unraisable, _quiet_excepthook
    signal.signal(signal.SIGTERM, _terminate)
    knob_reads.start_if_asked(command)
    try:
        main()
    except UserError as error:
        print(f"error: {error}{_restore_hint(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:
        how = ("terminated", 143) if isinstance(stop, Terminated) else ("interrupted", 130)
        print(f"{how[0]}: finished outputs are kept, unfinished ones removed; run the same command again to go on "
              "(training resumes from its last epoch checkpoint)", file=sys.stderr)
        sys.exit(how[1])
    except Exception as error:
        if _is_data_loss(error):
            print(f"error: a fetched data file is corrupt ({error.message.splitlines()[0]}). Fix: re-run the fetch "
                  "stage (`dvc repro -f fetch`).", file=sys.stderr)
            sys.exit(2)
        code = getattr(error, "errno", None)
        if not isinstance(error, (OSError, RuntimeError)) or (code not in DISK_FIXES and not _is_failed_write(error)):
            raise
        why = os.strerror(code) if code in DISK_FIXES else "a write failed"
        print(f"error: cannot write {getattr(error, 'filename', None) or 'an output'} ({why}); the previous "
              f"outputs are kept. Fix: {DISK_FIXES.get(code, 'free disk space')}, then run the same command again.",
              file=sys.stderr, flush=True)
        # Not sys.exit: at interpreter teardown h5py flushes its half-written
        # checkpoint again, on the same full disk, and can crash the process.
        os._exit(2)
