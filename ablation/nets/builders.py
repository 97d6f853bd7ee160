"""A user's own network as an arm: `model.arch: "package.module:function"` names a
function `function(input_shape, num_classes, *, option=default, ...)` that returns a
keras.Model. Its keyword-only parameters are its knobs, set as `model.options.NAME`
and checked against their annotations (bool, int, float, str, Literal[...]) when
params load, like the suite's own knobs; an option left out takes its default,
which a run records (train.json's `builder`) with a hash of the builder's source.

Importing the builder runs the project's own code, as dvc.yaml's commands do; a
module from outside the project and outside the installed packages is refused."""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import math
import site
import sys
import sysconfig
import typing
from pathlib import Path
from typing import Any, Callable

import keras

from ablation.core import reading
from ablation.core.errors import ParamsError
from ablation.core.knobs import builder_reference

MAX_OPTIONS = 64  # a builder with more keyword-only options is refused (a typo'd signature, not a network)


def is_reference(arch: Any) -> bool:
    return builder_reference(arch) is None


def name(reference: str) -> str:
    """The network's name in arm names and reports: the function's (`tiny_convnext`)."""
    return reference.split(":")[1]


def _allowed_roots() -> list[Path]:
    """The project (the working directory) and the installed packages."""
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    paths |= set(site.getsitepackages()) | {site.getusersitepackages()}
    return [Path.cwd().resolve(), *(Path(p).resolve() for p in sorted(paths) if p)]


def _module_file(module: str) -> Path:
    """The source file of `module`, refused unless it is in the project or installed."""
    fix = (f"put {module.replace('.', '/')}.py in the project (beside params.yaml) or install its package, "
           "then set model.arch: package.module:function")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # `python -m` puts it first; a console script does not
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise ParamsError(f"params: model.arch: module {module} cannot be found ({error}). Fix: {fix}.") from None
    origin = Path(spec.origin).resolve() if spec and spec.origin and spec.has_location else None
    if origin is None:
        raise ParamsError(f"params: model.arch: no module {module} with a source file. Fix: {fix}.")
    if not any(origin.is_relative_to(root) for root in _allowed_roots()):
        raise ParamsError(f"params: model.arch: module {module} is {origin}, outside the project and the installed "
                          f"packages, and is not imported. Fix: {fix}.")
    return origin


def load(reference: str) -> Callable:
    """The builder function `reference` names; ParamsError naming the module and the fix."""
    module, function = reference.split(":")
    _module_file(module)
    try:
        loaded = importlib.import_module(module)
    except Exception as error:  # the user's module: any error of its own
        raise ParamsError(f"params: model.arch: module {module} does not import ({type(error).__name__}: "
                          f"{str(error)[:300]}). Fix: correct {module}, then run the same command.") from None
    builder = getattr(loaded, function, None)
    if not callable(builder):
        found = [n for n, v in vars(loaded).items() if inspect.isfunction(v) and v.__module__ == loaded.__name__]
        raise ParamsError(f"params: model.arch: {module} has no function {function!r} (it has "
                          f"{', '.join(found) or 'none'}). Fix: set model.arch: {module}:FUNCTION.")
    return builder


def options_of(builder: Callable) -> dict[str, inspect.Parameter]:
    """The builder's knobs: its keyword-only parameters, with their annotations resolved."""
    parameters = inspect.signature(builder).parameters.values()
    hints = typing.get_type_hints(builder)
    return {p.name: p.replace(annotation=hints.get(p.name, p.annotation)) for p in parameters
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _fits(value: Any, annotation: Any, default: Any) -> str | None:
    """None when `value` fits the option's annotation (else its default's type), else what is allowed."""
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        return None if value in choices and type(value) in map(type, choices) else \
            "one of " + ", ".join(map(repr, choices))
    kind = annotation if annotation in (bool, int, float, str) else \
        type(default) if default is not inspect.Parameter.empty and type(default) in (bool, int, float, str) else None
    if kind is None:
        return None  # no annotation the suite can check
    if kind is float:
        fine = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        fine = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    return None if fine else {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}[kind]


def refusal(reference: str, options: dict) -> tuple | None:
    """Why the builder cannot be called with `options`, as (key, value, allowed, fix), or None."""
    builder = load(reference)
    positional = [p for p in inspect.signature(builder).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 2:
        return ("model.arch", reference, "a function (input_shape, num_classes, *, options...)",
                f"give {name(reference)} exactly two positional parameters, input_shape and num_classes")
    known = options_of(builder)
    if len(known) > MAX_OPTIONS:
        return ("model.arch", reference, f"a builder of at most {MAX_OPTIONS} keyword-only options", None)
    for option, value in options.items():
        if option not in known:  # said as an unknown key (sections.unknown_key), not a bad value
            close = difflib.get_close_matches(option, known, n=1)
            guess = f"did you mean `model.options.{close[0]}`? " if close else ""
            raise ParamsError(f"params: `model.options.{option}` is not an option of {name(reference)}; {guess}"
                              f"({name(reference)}'s options: {', '.join(known) or 'none'}). Fix: rename or remove "
                              "it (in params.yaml, or the `-S` that set it), or add it to the builder as a "
                              "keyword-only parameter.")
        if allowed := _fits(value, known[option].annotation, known[option].default):
            return (f"model.options.{option}", value, allowed, None)
    if missing := [o for o, p in known.items() if p.default is inspect.Parameter.empty and o not in options]:
        return (f"model.options.{missing[0]}", None, "a value (the builder gives it no default)",
                f"pass -S model.options.{missing[0]}=<value>")
    return None


def resolved(reference: str, options: dict) -> dict:
    """Every option as the builder runs with it: those set, and the others' defaults."""
    return {o: options.get(o, p.default) for o, p in options_of(load(reference)).items()}


def identity(reference: str, options: dict) -> dict:
    """What a run records of its builder: the reference, every option's value and a hash
    of the module's source (an edit makes a checkpoint stale and shows in --verify)."""
    module = _module_file(reference.split(":")[0])
    source = reading.read_bytes(module, "record", "keep a builder's module under 32 MB.", ParamsError)
    return {"reference": reference, "options": resolved(reference, options),
            "source_sha256": hashlib.sha256(source).hexdigest()}


def build(reference: str, options: dict, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The user's network, checked to be a keras.Model."""
    try:
        net = load(reference)(input_shape, num_classes, **options)
    except ParamsError:
        raise
    except Exception as error:  # the user's code: any error of its own
        raise ParamsError(f"params: model.arch: {reference}{tuple(input_shape)!r} raised {type(error).__name__}: "
                          f"{str(error)[:300]}. Fix: correct the builder in {reference.split(':')[0]}.") from None
    if not isinstance(net, keras.Model):
        raise ParamsError(f"params: model.arch: {reference} returned {type(net).__name__}, not a keras.Model. Fix: "
                          "return keras.Model(inputs, outputs) from the builder.")
    if net.name.startswith("functional"):  # Keras' default: reports name the network by its builder
        net.name = name(reference)
    return net
