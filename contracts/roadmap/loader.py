"""Read a roadmap file, refusing an invalid one with the file, line and field named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.roadmap.model import RoadmapFile

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file: where (line, dotted field) and what."""

    line: int
    field: str
    message: str


class RoadmapFileError(ValueError):
    """The roadmap file cannot be used; ``str()`` gives ``file:line: field: ...``."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = [
            f"{path}:{p.line}: {p.field}: {p.message}"
            if p.field
            else f"{path}:{p.line}: {p.message}"
            for p in problems
        ]
        super().__init__("invalid roadmap file\n" + "\n".join(lines))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    """Record the 1-based line of every mapping value and sequence item under ``path``."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            _index_lines(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)


def _locate(loc: tuple[int | str, ...], lines: dict[Path_, int]) -> tuple[int, str]:
    """Follow a pydantic error location through the YAML tree as far as it goes.

    Parts that name no YAML node (union tags such as ``share``, internal names) are skipped.
    """
    found: Path_ = ()
    for part in loc:
        candidate = (*found, part)
        if candidate in lines:
            found = candidate
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in found).lstrip(".")
    return lines.get(found, 1), field


def _describe(found: str, data: Any) -> str:
    """Add the indicator's id to ``indicators[3]`` so an operator sees which one is meant."""
    if not found.startswith("indicators[") or not isinstance(data, dict):
        return found
    index = int(found[len("indicators[") : found.index("]")])
    indicators = data.get("indicators")
    if (
        isinstance(indicators, list)
        and index < len(indicators)
        and isinstance(indicators[index], dict)
    ):
        ident = indicators[index].get("id")
        if isinstance(ident, str):
            return found.replace(f"indicators[{index}]", f"indicators[{index}]({ident})", 1)
    return found


def parse_roadmap(text: str, path: Path) -> RoadmapFile:
    """Validate roadmap YAML ``text`` read from ``path``; raise ``RoadmapFileError`` if invalid."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RoadmapFileError(
            path, [Problem(line, "", f"not valid YAML: {exc.problem}")]
        ) from None
    if node is None or not isinstance(data, dict):
        raise RoadmapFileError(
            path, [Problem(1, "", "the file must hold a mapping with 'indicators'")]
        )
    lines: dict[Path_, int] = {}
    _index_lines(node, (), lines)
    try:
        return RoadmapFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            line, found = _locate(error["loc"], lines)
            missing = error["type"] == "missing"
            name = str(error["loc"][-1]) if missing else ""
            message = (
                f"{name!r} is required" if missing else error["msg"].removeprefix("Value error, ")
            )
            if missing:
                found = f"{found}.{name}" if found else name
            problems.append(Problem(line, _describe(found, data), message))
        raise RoadmapFileError(path, problems) from None


def load_roadmap(path: str | Path) -> RoadmapFile:
    """Read and validate the roadmap file at ``path``; raise ``RoadmapFileError`` if unusable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoadmapFileError(file, [Problem(1, "", f"cannot read the file: {exc}")]) from None
    return parse_roadmap(text, file)
