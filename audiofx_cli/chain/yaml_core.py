"""The YAML dialect of chain files: YAML 1.2 core-schema scalars and bounded documents.

Scalars: plain `1e-3`, `8e1`, `1E3`, `+5`, `.5`, `-2.5e+1`, `0x1F`, `0o17` are numbers (YAML
1.2 core schema; PyYAML's 1.1 resolver reads `1e-3` as text and `010` as octal 8). `_` may group
digits (`48_000`, as YAML 1.1 and Python allow). Booleans are `true` / `false` only (also
`True`, `TRUE`, ...): `yes`, `no`, `on`, `off` are text. `null`, `~` and an empty value are
null. Dates, sexagesimal `1:30`, `<<` merge keys and `=` are text. `parse_scalar` is the one
function that says what a plain scalar means; inline stage options on a command line should
use it so that they read exactly as chain files do.

Bounds: a chain file is scanned as a stream of events (libyaml, in C) before any node is
built, and refused when it nests deeper than `MAX_YAML_DEPTH` collections or when, with every
alias followed, it has more than `MAX_YAML_NODES` nodes (the "billion laughs" kind of file: a
30-line file of nested aliases can stand for 2^30 stages). An alias to a collection that
contains it (a cycle) is refused too. So the work a file can cause is bounded by its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import BaseResolver

from audiofx_cli.errors import ChainSpecError

MAX_YAML_NODES = 50_000  # nodes of the document with every alias followed
MAX_YAML_DEPTH = 64  # nested collections (a `parallel` level takes 4)

_TAG = "tag:yaml.org,2002:"
_DIGITS = r"[0-9](?:_?[0-9])*"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(rf"^(?:[-+]?{_DIGITS}|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    rf"^(?:[-+]?(?:\.{_DIGITS}|{_DIGITS}(?:\.(?:{_DIGITS})?)?)(?:[eE][-+]?{_DIGITS})?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_RESOLVERS = (  # (tag, pattern, first characters), tried in this order
    ("null", _NULL, ["~", "n", "N", ""]),
    ("bool", _BOOL, list("tTfF")),
    ("int", _INT, list("-+0123456789")),
    ("float", _FLOAT, list("-+0123456789.")),
)


def _to_int(text: str) -> int | float:
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.int_max_str_digits)
        return float(text)


def _to_float(text: str) -> float:
    if text.lstrip("+-").lower() == ".inf":
        return float("-inf") if text.startswith("-") else float("inf")
    if text.lower() == ".nan":
        return float("nan")
    return float(text.replace("_", ""))


def parse_scalar(text: str) -> Any:
    """What a plain (unquoted) YAML scalar means in a chain file: None, bool, int, float or str.

    Example:
        >>> [parse_scalar(t) for t in ("1e-3", "8e1", "+5", ".5", "-2.5e+1", "0x10", "48_000")]
        [0.001, 80.0, 5, 0.5, -25.0, 16, 48000]
        >>> [parse_scalar(t) for t in ("true", "yes", "~", "", "1:30", "80 Hz")]
        [True, 'yes', None, None, '1:30', '80 Hz']
    """
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        return _to_int(text.replace("_", ""))
    if _FLOAT.match(text):
        return _to_float(text)
    return text


class CoreResolver(BaseResolver):
    """Implicit tags of plain scalars by the YAML 1.2 core schema (see `parse_scalar`)."""


for _name, _pattern, _first in _RESOLVERS:
    CoreResolver.add_implicit_resolver(_TAG + _name, _pattern, _first)


class CoreConstructor(SafeConstructor):
    """SafeConstructor whose null / bool / int / float follow `parse_scalar`, also for
    explicit tags (`!!int 0x10`); a value that does not fit its tag is a ConstructorError."""

    def _typed(self, node: yaml.Node, tag: str, pattern: re.Pattern[str]) -> Any:
        text = self.construct_scalar(node)  # type: ignore[arg-type]
        if not isinstance(text, str) or not pattern.match(text):
            raise ConstructorError(None, None, f"'{text}' is not a YAML {tag}", node.start_mark)
        return parse_scalar(text) if tag != "float" else float(parse_scalar(text))

    def construct_core_null(self, node: yaml.Node) -> Any:
        return self._typed(node, "null", _NULL)

    def construct_core_bool(self, node: yaml.Node) -> Any:
        return self._typed(node, "bool", _BOOL)

    def construct_core_int(self, node: yaml.Node) -> Any:
        return self._typed(node, "int", _INT)

    def construct_core_float(self, node: yaml.Node) -> Any:
        return self._typed(node, "float", _FLOAT)


for _name in ("null", "bool", "int", "float"):
    CoreConstructor.add_constructor(
        _TAG + _name, getattr(CoreConstructor, f"construct_core_{_name}")
    )

if getattr(yaml, "__with_libyaml__", False):  # libyaml parses in C: 10-20x faster
    from yaml.cyaml import CParser

    class ChainLoader(CParser, CoreConstructor, CoreResolver):  # type: ignore[misc]
        """Safe loader of chain files (libyaml parser, core-schema scalars)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            CoreConstructor.__init__(self)
            CoreResolver.__init__(self)

    _EventParser: Any = CParser
else:  # pragma: no cover - PyYAML built without libyaml

    class ChainLoader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        CoreConstructor,
        CoreResolver,
    ):
        """Safe loader of chain files (pure-Python parser, core-schema scalars)."""

        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            CoreConstructor.__init__(self)
            CoreResolver.__init__(self)

    _EventParser = yaml.SafeLoader


class ChainDumper(
    yaml.emitter.Emitter,
    yaml.serializer.Serializer,
    yaml.representer.SafeRepresenter,
    CoreResolver,
):
    """Safe dumper whose quoting follows the core schema: text such as '1e3' or 'yes' comes
    back from `ChainLoader` as the same text."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        yaml.emitter.Emitter.__init__(
            self,
            stream,
            canonical=kwargs.get("canonical"),
            indent=kwargs.get("indent"),
            width=kwargs.get("width"),
            allow_unicode=kwargs.get("allow_unicode"),
            line_break=kwargs.get("line_break"),
        )
        yaml.serializer.Serializer.__init__(
            self,
            encoding=kwargs.get("encoding"),
            explicit_start=kwargs.get("explicit_start"),
            explicit_end=kwargs.get("explicit_end"),
            version=kwargs.get("version"),
            tags=kwargs.get("tags"),
        )
        yaml.representer.SafeRepresenter.__init__(
            self,
            default_style=kwargs.get("default_style"),
            default_flow_style=kwargs.get("default_flow_style", False),
            sort_keys=kwargs.get("sort_keys", True),
        )
        CoreResolver.__init__(self)


@dataclass
class _Open:
    """A collection whose end event has not come yet."""

    anchor: str | None
    nodes_before: int
    depth: int
    deepest: int = 0  # deepest collection level reached inside it


def check_document_size(text: str, source: str) -> None:
    """Refuse a document that nests too deeply or expands (aliases followed) to too many
    nodes, from its event stream alone: the cost is bounded by `MAX_YAML_NODES` events.

    Raises:
        ChainSpecError: at the line where a limit is passed; yaml.YAMLError for invalid YAML
            (the caller reports it).
    """
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, collection depth)
    stack: list[_Open] = []
    nodes = 0

    def fail(event: yaml.Event, message: str) -> ChainSpecError:
        mark = event.start_mark
        return ChainSpecError(message, source=source, line=mark.line + 1, column=mark.column + 1)

    def reach(depth: int) -> None:
        if stack:
            stack[-1].deepest = max(stack[-1].deepest, depth)

    parser = _EventParser(text)
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, yaml.AliasEvent):
                if any(frame.anchor == event.anchor for frame in stack):
                    raise fail(event, f"alias *{event.anchor} is inside its own anchor (a cycle)")
                if event.anchor not in sizes:
                    continue  # undefined: the composer reports it
                size, depth = sizes[event.anchor]
                nodes += size
                reach(len(stack) + depth)
                if len(stack) + depth > MAX_YAML_DEPTH:
                    raise fail(event, f"nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor is not None:
                    sizes[event.anchor] = (1, 0)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                nodes += 1
                stack.append(_Open(event.anchor, nodes - 1, len(stack) + 1))
                reach(len(stack))
                if len(stack) > MAX_YAML_DEPTH:
                    raise fail(event, f"nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                frame = stack.pop()
                frame.deepest = max(frame.deepest, frame.depth)
                reach(frame.deepest)
                if frame.anchor is not None:
                    sizes[frame.anchor] = (
                        nodes - frame.nodes_before,
                        frame.deepest - frame.depth + 1,
                    )
            if nodes > MAX_YAML_NODES:
                raise fail(
                    event,
                    f"the chain expands to more than {MAX_YAML_NODES:,} YAML nodes (aliases "
                    "followed); a chain file may have at most that many",
                )
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()
