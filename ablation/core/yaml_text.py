"""YAML as DVC reads it (YAML 1.2 floats), with no aliases and no duplicate keys:
the one reader of params.yaml, study presets, `-S`/`--grid` values and committed
runs' params, so every file and value means the same everywhere."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ablation.core.errors import ParamsError


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-4` is a string, `010` is 8 and `yes` is true;
    DVC (YAML 1.2) reads a float, 10 and a string. Resolve floats, integers and
    booleans as DVC does, so `train.learning_rate: 1e-3` means 0.001 to both.
    Aliases (`*name`) are refused: nested aliases expand exponentially (a "billion
    laughs" file of a few hundred bytes), and no params or study file needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "an alias (*name): aliases are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


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
    """A params, preset or experiment file's content; ParamsError for a file that is
    not UTF-8 or not valid YAML, naming where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ParamsError(f"params: {path} is not UTF-8 text (byte {error.start}). Fix: save it as UTF-8, "
                          "or restore it from git.") from None
    return parse_yaml_text(text, origin or str(path))


def parse_yaml_text(text: str, origin: str):
    try:
        return parse_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamsError(f"params: {origin} is not valid YAML ({problem}{where}). Fix: correct it "
                          "(each key once per section, no aliases).") from None


def parse_override_value(text: str, origin: str):
    """The value of `-S key=text` (or a --grid value) exactly as DVC will read it when the
    experiment runs: DVC parses -S with Hydra's override grammar and writes the result
    into params.yaml, so `010`, `0x10` and `.nan` are strings there, `nan` and `inf`
    floats. A sweep (`a,b`) is no single value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException
    try:
        override = OverridesParser.create().parse_overrides([f"value={text}"])[0]  # the key is checked on its own
    except OverrideParseException as error:
        raise ParamsError(f"params: {origin} is not a value DVC's -S can read ({str(error).splitlines()[0]}). Fix: "
                          "quote a string ('...'), or write a number, true/false, or a [list].") from None
    if override.is_sweep_override():
        raise ParamsError(f"params: {origin} is several values (a sweep), not one. Fix: pass one value with -S, and "
                          "vary a key with --grid KEY=V1,V2.")
    return override.value()
