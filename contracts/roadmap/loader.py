"""Read a YAML file into a pydantic model, refusing an invalid one with the file, line and field.

Used for the roadmap file (``load_roadmap``) and, by the alerts service, for its own file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from contracts.roadmap.model import RoadmapFile

Path_ = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file: where (line, dotted field) and what."""

    line: int
    field: str
    message: str


class YamlFileError(ValueError):
    """A YAML file that cannot be used; ``str()`` gives ``file:line: field: ...`` per problem."""

    what = "file"

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = [
            f"{path}:{p.line}: {p.field}: {p.message}"
            if p.field
            else f"{path}:{p.line}: {p.message}"
            for p in problems
        ]
        super().__init__(f"invalid {self.what}\n" + "\n".join(lines))


class RoadmapFileError(YamlFileError):
    """The roadmap file cannot be used."""

    what = "roadmap file"


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
    """Add an item's name to ``indicators[3]`` (its ``id`` or ``name``) so a reader sees which."""
    if "[" not in found or not isinstance(data, dict):
        return found
    top = found[: found.index("[")]
    index = int(found[len(top) + 1 : found.index("]")])
    items = data.get(top)
    if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
        ident = items[index].get("id", items[index].get("name"))
        if isinstance(ident, str):
            return found.replace(f"{top}[{index}]", f"{top}[{index}]({ident})", 1)
    return found


def parse_yaml_model(
    text: str, path: Path, model: type[ModelT], refusal: type[YamlFileError] = YamlFileError
) -> ModelT:
    """Validate YAML ``text`` from ``path`` as ``model``; raise ``refusal`` naming each line."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise refusal(path, [Problem(line, "", f"not valid YAML: {exc.problem}")]) from None
    if node is None or not isinstance(data, dict):
        raise refusal(path, [Problem(1, "", "the file must hold a mapping of settings")])
    lines: dict[Path_, int] = {}
    _index_lines(node, (), lines)
    try:
        return model.model_validate(data)
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
        raise refusal(path, problems) from None


def load_yaml_model(
    path: str | Path, model: type[ModelT], refusal: type[YamlFileError] = YamlFileError
) -> ModelT:
    """Read the file at ``path`` and validate it as ``model``; raise ``refusal`` if unusable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise refusal(file, [Problem(1, "", f"cannot read the file: {exc}")]) from None
    return parse_yaml_model(text, file, model, refusal)


def parse_roadmap(text: str, path: Path) -> RoadmapFile:
    """Validate roadmap YAML ``text`` read from ``path``; raise ``RoadmapFileError`` if invalid."""
    return parse_yaml_model(text, path, RoadmapFile, RoadmapFileError)


def load_roadmap(path: str | Path) -> RoadmapFile:
    """Read and validate the roadmap file at ``path``; raise ``RoadmapFileError`` if unusable."""
    return load_yaml_model(path, RoadmapFile, RoadmapFileError)
