"""YAML as DVC reads it (YAML 1.2 floats), with no aliases and no duplicate keys:
the one reader of params.yaml, study presets, `-S`/`--grid` values and committed
runs' params, so every file and value means the same everywhere."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ablation.errors import ParamsError


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-4` is a string; DVC (YAML 1.2) reads a float.
    Resolve exponent floats as DVC does, so `-S train.learning_rate=1e-3` means 0.001.
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
