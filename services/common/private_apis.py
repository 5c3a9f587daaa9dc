"""The private parts of libraries the product relies on, checked before a service starts.

Two modules reach inside a library, each for a reason its docstring gives:
``services.common.fetch_guard`` patches aiokafka's fetcher, and ``services.common.histograms``
writes a prometheus_client histogram's buckets. Both libraries are pinned in ``pyproject.toml``
to the releases tested. Should an install bring another release whose internals differ, the
service refuses to start with a message naming the library and its version, rather than run
with an unguarded fetcher or miscounted histograms.
"""

from __future__ import annotations

from services.common import fetch_guard, histograms
from services.common.config import ConfigError


class PrivateApiChanged(ConfigError):
    """A library's internals that the product relies on are not as expected."""


def problems() -> list[str]:
    return [*fetch_guard.shape_problems(), *histograms.shape_problems()]


def require_private_apis() -> None:
    """Raise ``PrivateApiChanged`` listing every difference found; return when there is none."""
    found = problems()
    if found:
        raise PrivateApiChanged(
            "a library's internals are not what this release of the product was built on: "
            + "; ".join(found)
            + ". Install the versions pinned in pyproject.toml (constraints.txt), "
            "or update the module named"
        )
