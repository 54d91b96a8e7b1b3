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


def load_yaml(path: Path) -> ConfigDocument:
    """Parse ``path``; raise :class:`ConfigError` on unreadable files, bad YAML or duplicate keys."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, "", f"cannot read file: {exc.strerror}")]) from exc
    try:
        node = yaml.compose(text, Loader=ConfigLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError([ConfigIssue(file, "", f"invalid YAML: {problem}", line)]) from exc
    if node is None:
        raise ConfigError([ConfigIssue(file, "", "the file is empty")])
    lines: dict[Loc, int] = {}
    duplicates: list[ConfigIssue] = []
    _index_node(node, (), lines, duplicates, file)
    if duplicates:
        raise ConfigError(duplicates)
    data = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader
    return ConfigDocument(file=file, data=data, lines=lines)


def _index_node(node: yaml.Node, loc: Loc, lines: dict[Loc, int], dups: list[ConfigIssue], file: str) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                dups.append(
                    ConfigIssue(file, ".".join(map(str, (*loc, key))), "duplicate key", key_node.start_mark.line + 1)
                )
            seen.add(key)
            _index_node(value_node, (*loc, key), lines, dups, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_node(item, (*loc, index), lines, dups, file)


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
