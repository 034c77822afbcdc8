"""Reads every YAML file wpgate reads (config, release manifest, QA record) with the same limits:
a size cap, a nesting cap, no duplicate keys, and aliases only where a person may want them (the config).

A hostile file (an alias bomb, thousands of nested brackets, a huge document) is refused as bad input
in a fraction of a second, before anything builds it in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from wpgate.errors import BadInput, yaml_problem

MAX_BYTES = 1 << 20          # 1 MB: a manifest of hundreds of updates with its QA record is a few KB
MAX_DEPTH = 16               # the config needs 7 levels (sites.NAME.caches[i].TYPE.headers.NAME); the rest fewer
MAX_VALUES = 50_000          # scalars, lists and mappings, aliases expanded: far beyond any real file

_BOOL_AND_NULL = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")
_MERGE = "tag:yaml.org,2002:merge"
# libyaml when PyYAML has it: the pure-Python scanner takes seconds on a file near MAX_BYTES.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(ComposerError):
    """A limit of this module, not a syntax error: said as such."""


class _NoDuplicateKeys:
    """A mapping that names a key twice is an error, not "the last one wins"."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:  # type: ignore[override]
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node)  # type: ignore[attr-defined]
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the constructor says so itself
            if first is not None:
                raise ConstructorError("while reading a mapping", node.start_mark,
                                       f"duplicate key {key!r} (first at line {first.line + 1})",
                                       key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class TextLoader(_NoDuplicateKeys, _Base):  # type: ignore[valid-type,misc]
    """Manifests and QA records: every plain scalar but true/false/null stays text (`5.10` is version
    "5.10", not 5.1)."""


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _BOOL_AND_NULL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class QaLoader(_NoDuplicateKeys, _Base):  # type: ignore[valid-type,misc]
    """YAML as people write a QA record: numbers stay numbers (`id: 12`), dates stay text (they go into a
    digest as JSON)."""


QaLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ConfigLoader(_NoDuplicateKeys, _Base):  # type: ignore[valid-type,misc]
    """The config: YAML's usual scalars (numbers, booleans)."""


def read(path: Path, what: str, *, config: bool = False, loader: type | None = None) -> Any:
    """The YAML document in `path`, or BadInput naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise BadInput(f"{path}: cannot read the {what}: {error.strerror or error}") from None
    if len(raw) > MAX_BYTES:
        raise BadInput(f"{path}: the {what} is larger than {MAX_BYTES // (1 << 20)} MB; wpgate refuses it unread")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: the {what} is not UTF-8 text (byte {error.start})") from None
    return parse(text, f"{path}: the {what}", config=config, loader=loader)


def parse(text: str, where: str, *, config: bool = False, loader: type | None = None) -> Any:
    """`text` as YAML, under the limits; `where` starts every error message. Aliases (`*name`) are
    allowed in the config only (many sites sharing settings), and count as what they expand to."""
    try:
        _check_events(text, allow_aliases=config)
        loader = (loader or (ConfigLoader if config else TextLoader))(text)
        try:
            node = loader.get_single_node()
            if node is not None and config:
                size = expanded_size(node)
                if size > MAX_VALUES:
                    raise BadInput(f"{where} expands to {size} values through its aliases (at most "
                                   f"{MAX_VALUES} are read): an alias bomb?")
            return None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except _Refused as error:
        mark = error.problem_mark
        raise BadInput(f"{where} is refused at line {mark.line + 1}, column {mark.column + 1}: {error.problem}") from None
    except yaml.YAMLError as error:
        raise BadInput(f"{where} is {yaml_problem(error)}") from None
    except RecursionError:  # the limits above should have caught it first
        raise BadInput(f"{where} is nested too deeply") from None


def _check_events(text: str, *, allow_aliases: bool) -> None:
    """One pass over the parser's events, before anything is built: no alias where none is allowed,
    no nesting beyond MAX_DEPTH, no more than MAX_VALUES values."""
    depth = values = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, AliasEvent) and not allow_aliases:
            raise _Refused(None, None, "aliases (*name) are not allowed in this file", event.start_mark)
        if isinstance(event, (ScalarEvent, AliasEvent, CollectionStartEvent)):
            values += 1
            if values > MAX_VALUES:
                raise _Refused(None, None, f"holds more than {MAX_VALUES} values", event.start_mark)
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def expanded_size(root: Any) -> int:
    """How many nodes the document holds once every alias is replaced by what it names (without
    building it: a node's size is computed once, however many aliases share it)."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a node holding an alias of itself counts once here
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total
        return total

    return size(root)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared value out in full each time: what wpgate writes, it must read back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=200)
