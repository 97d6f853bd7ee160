"""The one escaper for every user-derived string a report writes: paths, argv, `-S`
values, class names, machine strings, study and arm names (the reports are
Markdown; GitHub and MkDocs render their HTML from it). A string comes out as
the text it is, never as Markdown or HTML structure (a heading, a link, a tag, a
table cell boundary), and on one line: a control character (a newline in a class
folder's name) is shown as its escape. Figures draw text with matplotlib's
mathtext off (report/figures.py), so `$...$` in a class name is drawn as typed."""
from __future__ import annotations

import re

# The characters that make Markdown structure mid-line (emphasis, code, links, tags,
# entities, table cells, math on GitHub), backslash-escaped as CommonMark allows;
# those that do so only at a line's start (a heading, a list) are escaped there.
# `_` inside a word (mixed_bfloat16) starts no emphasis and stays as it is.
_MARKDOWN = re.compile(r"([\\`*\[\]<>|~&$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_LINE_START = ("#", "-", "+", "=", ".")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(value) -> str:
    """`value` as text with every control character written as its escape (`\\n`)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def text(value) -> str:
    """`value` for Markdown running text or a table cell: shown as typed."""
    escaped = _MARKDOWN.sub(r"\\\1", one_line(value))
    return "\\" + escaped if escaped.startswith(_LINE_START) else escaped


def code(value) -> str:
    """`value` as an inline code span: a fence longer than any run of backticks in it,
    `|` escaped so that it stays in its table cell (GitHub's tables read it so)."""
    shown = one_line(value).replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", shown)), default=0) + 1)
    pad = " " if shown[:1] == "`" or shown[-1:] == "`" or not shown.strip() else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def figure(value) -> str:
    """`value` for a figure's title, label or tick: one line (mathtext is off)."""
    return one_line(value)
