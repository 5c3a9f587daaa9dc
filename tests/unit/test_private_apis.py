"""The libraries' internals the fetch guard and the histograms rely on are checked before a
service starts, and a change is named with the library's version."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, cast

import aiokafka
import pytest
from prometheus_client import Histogram

from services.common import fetch_guard, histograms, private_apis
from services.common.runtime import ServiceApp, serve


def test_this_install_has_what_both_rely_on() -> None:
    assert private_apis.problems() == []
    private_apis.require_private_apis()


def test_a_fetcher_of_another_shape_is_named_with_the_aiokafka_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def init(self: Any, tp: Any, *, assignment: Any, records: Any) -> None: ...

    monkeypatch.setattr(fetch_guard, "_FETCH_RESULT_INIT", init)
    with pytest.raises(private_apis.PrivateApiChanged) as refused:
        private_apis.require_private_apis()
    assert f"aiokafka {aiokafka.__version__}: FetchResult.__init__ takes" in str(refused.value)
    assert "pyproject.toml" in str(refused.value)


def test_histogram_internals_that_miscount_are_named_with_the_prometheus_client_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = histograms.observe_all

    def loses_the_sum(histogram: Histogram, values: Sequence[float]) -> None:
        original(histogram, values)
        histogram._sum.set(0)

    monkeypatch.setattr(histograms, "observe_all", loses_the_sum)
    (problem,) = histograms.shape_problems()
    assert problem.startswith(f"prometheus-client {version('prometheus-client')}: ")
    assert "probe_seconds_sum" in problem


def test_histogram_internals_that_are_gone_are_named_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if a release renamed the attributes ``observe_all`` writes."""

    def renamed(histogram: Histogram, values: Sequence[float]) -> None:
        getattr(histogram, "_bucket_bounds")  # noqa: B009 - a name a newer release might use

    monkeypatch.setattr(histograms, "observe_all", renamed)
    (problem,) = histograms.shape_problems()
    assert "observe_all failed: AttributeError" in problem


async def test_a_service_refuses_to_start_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def init(self: Any, tp: Any, *, assignment: Any, records: Any) -> None: ...

    monkeypatch.setattr(fetch_guard, "_FETCH_RESULT_INIT", init)
    with pytest.raises(private_apis.PrivateApiChanged, match=f"aiokafka {aiokafka.__version__}"):
        await serve(cast(ServiceApp, None))  # refused before the app is touched
