"""Loading YAML configuration files so that every problem can be reported as *file, line, path, reason*.

PyYAML silently keeps the last of two duplicate keys; a duplicated grant or column would then vanish
without a word. :func:`load_yaml` rejects duplicates and remembers the line of every node, and
:func:`validate` turns pydantic's errors into :class:`~gateway.errors.ConfigIssue` objects whose path
names list items by their ``name`` (``departments[health].tables[patients]``) instead of an index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schema.errors import ConfigError, ConfigIssue

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only ``true``/``false`` are booleans.

    YAML 1.1 also reads ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` as booleans, which would turn a
    relationship's ``on:`` key or a country code ``NO`` into ``True``/``False``.
    """


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class ConfigDocument:
    """A parsed YAML file: its data plus the line of every node, for precise error messages."""

    file: str
    data: Any
    lines: Mapping[Loc, int] = field(default_factory=dict)

    def issue(self, loc: Loc, reason: str) -> ConfigIssue:
        """A :class:`ConfigIssue` at ``loc``, with the nearest known line number."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                break
        return ConfigIssue(file=self.file, path=describe_path(self.data, loc), reason=reason, line=line)


#: Most nodes a configuration file may hold once its aliases (``*name``) are expanded: far above any real
#: catalog, far below what would exhaust memory (a "billion laughs" file of nested aliases).
MAX_NODES = 1_000_000
#: The deepest nesting of mappings and lists a configuration file may have (a catalog needs about eight).
MAX_DEPTH = 64


def load_yaml(path: Path) -> ConfigDocument:
    """Parse ``path``; raise :class:`ConfigError` on unreadable files, text that is not UTF-8, bad YAML,
    duplicate keys, an alias inside the node it names, nesting past :data:`MAX_DEPTH`, or aliases expanding
    past :data:`MAX_NODES`."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, "", f"cannot read file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue(file, "", "the file is not UTF-8 text", line)]) from None
    try:
        node = yaml.compose(text, Loader=ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_issue(file, exc)]) from exc
    except RecursionError:  # PyYAML's composer recurses once per level
        raise ConfigError([ConfigIssue(file, "", f"the file nests more than {MAX_DEPTH} levels deep")]) from None
    if node is None:
        raise ConfigError([ConfigIssue(file, "", "the file is empty")])
    index = _Index(file)
    index.visit(node, ())
    if index.issues:
        raise ConfigError(index.issues)
    try:
        data = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader
    except yaml.YAMLError as exc:  # a key that is a list or mapping, a tag no safe loader knows
        raise ConfigError([_yaml_issue(file, exc)]) from exc
    except (ValueError, TypeError, AttributeError) as exc:  # an explicit tag PyYAML cannot apply: !!int "x"
        reason = "invalid YAML: a value with an explicit tag (!!int, !!timestamp...) is not of that type"
        raise ConfigError([ConfigIssue(file, "", reason)]) from exc
    return ConfigDocument(file=file, data=data, lines=index.lines)


def _yaml_issue(file: str, error: yaml.YAMLError) -> ConfigIssue:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(error, "problem", None) or "not valid YAML"
    return ConfigIssue(file, "", f"invalid YAML: {problem}", line)


@dataclass
class _Index:
    """The line of every node by its path, and the problems a parser lets through (duplicate keys...)."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    nodes: int = 0

    def visit(self, node: yaml.Node, loc: Loc, inside: frozenset[int] = frozenset()) -> None:
        line = node.start_mark.line + 1
        if id(node) in inside:
            self.issues.append(
                ConfigIssue(self.file, _dotted(loc), "a YAML alias refers to a node containing it", line)
            )
            return
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                reason = f"the file expands to more than {MAX_NODES:,} values (YAML aliases)"
                self.issues.append(ConfigIssue(self.file, "", reason))
            return
        self.lines.setdefault(loc, line)
        if len(inside) == MAX_DEPTH:
            self.issues.append(ConfigIssue(self.file, "", f"the file nests more than {MAX_DEPTH} levels deep", line))
            return
        inside = inside | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                if key in seen:
                    self.issues.append(
                        ConfigIssue(self.file, _dotted((*loc, key)), "duplicate key", key_node.start_mark.line + 1)
                    )
                seen.add(key)
                self.visit(value_node, (*loc, key), inside)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.visit(item, (*loc, index), inside)


def _dotted(loc: Loc) -> str:
    return ".".join(map(str, loc))


def describe_path(data: Any, loc: Iterable[str | int]) -> str:
    """``("departments", 0, "tables", 1)`` → ``departments[health].tables[patients]`` using item names."""
    parts: list[str] = []
    current = data
    for step in loc:
        if isinstance(step, int):
            item = current[step] if isinstance(current, list) and 0 <= step < len(current) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(f"[{name}]" if isinstance(name, str) else f"[{step}]")
            current = item
        else:
            parts.append(f".{step}" if parts else str(step))
            current = current.get(step) if isinstance(current, dict) else None
    return "".join(parts)


def validate(model: type[ModelT], document: ConfigDocument, context: dict[str, Any] | None = None) -> ModelT:
    """Validate ``document`` against ``model``; every pydantic error becomes a located :class:`ConfigIssue`.

    Input values are never echoed: a rejected value may be a secret pasted in the wrong place.
    """
    try:
        return model.model_validate(document.data, context=context)
    except ValidationError as exc:
        issues = [
            document.issue(_data_loc(document.data, err["loc"], keep_missing=err["type"] == "missing"), _reason(err))
            for err in exc.errors()
        ]
        raise ConfigError(issues) from None


def _data_loc(data: Any, loc: tuple[Any, ...], *, keep_missing: bool) -> Loc:
    """Drop the steps pydantic adds that are not keys of the file (a discriminated union's tag).

    The last step of a "missing" error names the absent key, so it is kept.
    """
    kept: list[str | int] = []
    current = data
    for position, step in enumerate(loc):
        is_last = position == len(loc) - 1
        if isinstance(step, int):
            kept.append(step)
            current = current[step] if isinstance(current, list) and 0 <= step < len(current) else None
        elif isinstance(current, dict) and step in current:
            kept.append(step)
            current = current[step]
        elif is_last and keep_missing:
            kept.append(str(step))
    return tuple(kept)


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(err.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")
