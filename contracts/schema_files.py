"""JSON Schema files generated from the models, committed under ``contracts/schemas/``.

Run ``python -m contracts.schema_files`` (``make schemas``) after changing a model; a unit test
fails while the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.roadmap.model import RoadmapFile
from contracts.topics import TOPICS

SCHEMA_DIR = Path(__file__).with_name("schemas")
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _document(schema: dict[str, Any], title: str, description: str) -> str:
    body = {"$schema": _DIALECT, "title": title, "description": description, **schema}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name to text, for every topic's value and for the roadmap file."""
    files = {
        f"{spec.name}.json": _document(spec.value_schema(), spec.name, spec.description)
        for spec in TOPICS
    }
    files["roadmap-file.json"] = _document(
        RoadmapFile.model_json_schema(), "roadmap file", "deploy/roadmap.yaml"
    )
    return files


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into ``directory`` and remove ones no model produces any more."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        target = directory / name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        sys.stdout.write(f"wrote {path}\n")
