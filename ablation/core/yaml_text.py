"""YAML as DVC reads it (YAML 1.2 floats), with no aliases and no duplicate keys:
the one reader of params.yaml, study presets, `-S`/`--grid` values and committed
runs' params, so every file and value means the same everywhere."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ablation.core import reading
from ablation.core.errors import ParamsError


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-4` is a string, `010` is 8 and `yes` is true;
    DVC (YAML 1.2) reads a float, 10 and a string. Resolve floats, integers and
    booleans as DVC does, so `train.learning_rate: 1e-3` means 0.001 to both.
    Aliases (`*name`) are refused: nested aliases expand exponentially (a "billion
    laughs" file of a few hundred bytes), and no params or study file needs them.
    Nesting is bounded (reading.MAX_DEPTH) as it is composed, before Python's
    recursion limit is met."""
    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "an alias (*name): aliases are not allowed",
                                              self.peek_event().start_mark)
        if self.depth >= reading.MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nesting deeper than {reading.MAX_DEPTH} levels",
                                              self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mapping_without_duplicates(loader, node, deep=False):
    """PyYAML keeps the last of two equal keys; a params file where a knob appears
    twice is a mistake, so it is refused."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _yaml12_int(loader, node):
    """YAML 1.2's core integers: decimal (a leading zero is no octal), 0o octal, 0x hex."""
    text = loader.construct_scalar(node).replace("_", "")  # 1_000: 1000, as DVC's reader has it
    sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
    if len(digits) > reading.MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(None, None, f"an integer of {len(digits):,} digits (at most "
                                                f"{reading.MAX_INT_DIGITS})", node.start_mark)
    base = {"0o": 8, "0x": 16}.get(digits[:2])
    return sign * (int(digits[2:], base) if base else int(digits, 10))


_INT, _BOOL = "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool"
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (_INT, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Yaml12Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                    list("-+0123456789"))
_Yaml12Loader.add_constructor(_INT, _yaml12_int)
_Yaml12Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Yaml12Loader)


def read_yaml_file(path: str | Path, origin: str | None = None):
    """A params, preset or experiment file's content, read through the one reader;
    ParamsError for a file that is not a regular file, too large, not UTF-8 or not
    valid YAML, naming where."""
    text = reading.read_text(path, "params", "pass a UTF-8 YAML file (or restore it from git).", _ParamsFileError)
    return parse_yaml_text(text, origin or str(path))


class _ParamsFileError(ParamsError):
    def __init__(self, message: str):
        super().__init__(f"params: {message}")


def parse_yaml_text(text: str, origin: str):
    try:
        return parse_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamsError(f"params: {origin} is not valid YAML ({problem}{where}). Fix: correct it "
                          "(each key once per section, no aliases).") from None
    except RecursionError:  # a flow sequence is parsed recursively before it is composed
        raise ParamsError(f"params: {origin} is nested more than {reading.MAX_DEPTH} levels deep. Fix: correct "
                          "it.") from None


def parse_override_value(text: str, origin: str):
    """The value of `-S key=text` (or a --grid value) exactly as DVC will read it when the
    experiment runs: DVC parses -S with Hydra's override grammar and writes the result
    into params.yaml, so `010`, `0x10` and `.nan` are strings there, `nan` and `inf`
    floats. A sweep (`a,b`) is no single value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException
    try:
        override = OverridesParser.create().parse_overrides([f"value={text}"])[0]  # the key is checked on its own
    except (OverrideParseException, ValueError, RecursionError) as error:  # ValueError: an int of 4,300+ digits
        why = (str(error).splitlines()[0] if isinstance(error, OverrideParseException) else
               "an integer of over 4,300 digits" if isinstance(error, ValueError) else
               f"nested more than {reading.MAX_DEPTH} levels deep")
        raise ParamsError(f"params: {origin} is not a value DVC's -S can read ({why}). Fix: "
                          "quote a string ('...'), or write a number, true/false, or a [list].") from None
    if override.is_sweep_override():
        raise ParamsError(f"params: {origin} is several values (a sweep), not one. Fix: pass one value with -S, and "
                          "vary a key with --grid KEY=V1,V2.")
    return reading.check_bounds(override.value(), f"params: {origin}", "write a shorter value.", ParamsError)
