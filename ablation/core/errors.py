"""The one base of the errors a user fixes: bad params, missing or malformed data,
a cluster or remote not ready. Stage scripts print such an error as one line
that names the fix, and exit with code 2."""
from ablation.core.escaping import one_line


class UserError(ValueError):
    """An input the user can fix; the message says what is wrong and the fix, on one
    line whatever it quotes (a key or path with a newline in it is shown escaped)."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class ParamsError(UserError):
    """A params value (params.yaml, a preset, `-S`, `--grid`) is unknown, of the wrong type,
    or impossible, or its file is not valid YAML."""


class DataError(UserError):
    """Missing, empty or malformed input data; the message names the path and the fix."""
