"""The import contracts of ``pyproject.toml`` (``[tool.importlinter]``, what ``make lint`` checks
with ``lint-imports``), run through import-linter's own contract classes.

- ``pure``: every module whose docstring says it is pure imports, directly or not, no I/O
  library and none of the product's I/O modules;
- ``layers``: the command line above the services, the services above the common plumbing, that
  above ``contracts``; the services import one another only through ``services.common``.

The contracts are checked on the real import graph, and on copies with one forbidden import
added, to show that each of them can break.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter.api import read_configuration
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract, ContractCheck

ROOT = Path(__file__).resolve().parents[2]
CONFIG = read_configuration(str(ROOT / "pyproject.toml"))
SESSION: dict[str, Any] = CONFIG["session_options"]
CONTRACT_TYPES: dict[str, type[Contract]] = {
    "forbidden": ForbiddenContract,
    "layers": LayersContract,
}
OPTIONS: dict[str, dict[str, Any]] = {c["id"]: c for c in CONFIG["contracts_options"]}

CLAIMS_PURITY = re.compile(r"\b[Pp]ure\b(?![-\s]+Python)")
"""A docstring's claim: "Pure.", "pure but for ...", "a bounded, pure window"; not "pure-Python"."""


def _contract(contract_id: str) -> Contract:
    options = OPTIONS[contract_id]
    return CONTRACT_TYPES[options["type"]](options["name"], SESSION, options)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *SESSION["root_packages"],
        include_external_packages=SESSION["include_external_packages"] in (True, "true", "True"),
        cache_dir=None,
    )


def _broken(check: ContractCheck) -> list[str]:
    """The offending imports of a check, one line each."""
    metadata = check.metadata
    chains = [chain for found in metadata.get("invalid_chains", []) for chain in found["chains"]]
    chains += [
        route["chain"]
        for found in metadata.get("invalid_dependencies", [])
        for route in found["routes"]
    ]
    lines = [" -> ".join([*(link["importer"] for link in c), c[-1]["imported"]]) for c in chains]
    lines += [f"{module}: in no layer" for module in metadata.get("undeclared_modules", [])]
    return lines


def test_there_are_contracts() -> None:
    assert set(OPTIONS) == {"pure", "layers"}


@pytest.mark.parametrize("contract_id", sorted(OPTIONS))
def test_the_contract_is_kept(graph: grimp.ImportGraph, contract_id: str) -> None:
    check = _contract(contract_id).check(copy.deepcopy(graph), verbose=False)
    assert check.kept, "\n".join([f"{OPTIONS[contract_id]['name']} BROKEN:", *_broken(check)])


def _package_listing_says_pure(path: Path) -> bool:
    """A package's docstring lists the module as pure: "- ``fold.py``: ... (pure)"."""
    package_doc = ast.get_docstring(ast.parse((path.parent / "__init__.py").read_text())) or ""
    return re.search(rf"``{re.escape(path.name)}``:.*\(pure\)", package_doc) is not None


def test_every_module_that_says_it_is_pure_is_under_the_contract() -> None:
    """The contract names its modules one by one: a module that starts (or stops) claiming to
    be pure must be added to (or taken from) ``source_modules``."""
    claiming = set()
    for package in SESSION["root_packages"]:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__init__.py":
                continue  # a package's docstring describes its modules
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if CLAIMS_PURITY.search(doc) or _package_listing_says_pure(path):
                claiming.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    listed = set(OPTIONS["pure"]["source_modules"])
    assert claiming == listed, (
        f"say they are pure but are not listed: {sorted(claiming - listed)}; "
        f"listed but do not say so: {sorted(listed - claiming)}"
    )


@pytest.mark.parametrize(
    ("importer", "imported", "contract_id"),
    [
        # what outcomes did before OutboundRecord moved to services.common.outbound
        ("services.ingest.outcomes", "services.common.publishing", "pure"),
        ("services.common.lookback", "asyncio", "pure"),
        ("services.metrics.fold", "prometheus_client", "pure"),
        # indirect: services.alerts.board imports contracts.codec
        ("contracts.codec", "httpx", "pure"),
        ("contracts.events", "services.common.config", "layers"),
        ("services.common.kafka", "services.ingest.app", "layers"),
        ("services.ingest.pipeline", "services.metrics.fold", "layers"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    graph: grimp.ImportGraph, importer: str, imported: str, contract_id: str
) -> None:
    broken = copy.deepcopy(graph)
    broken.add_import(importer=importer, imported=imported)
    check = _contract(contract_id).check(broken, verbose=False)
    assert not check.kept
    assert any(importer in line and imported in line for line in _broken(check)), _broken(check)
