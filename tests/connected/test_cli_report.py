"""``roadmap-monitor report`` when a service cannot answer: a clear message, no file."""

from __future__ import annotations

import io
from pathlib import Path

from services.commands.report import EXIT_UNAVAILABLE, run_report
from services.common.embedded_broker import free_port
from tests.support.services import REPO


def test_an_unreachable_metrics_service_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out, err = io.StringIO(), io.StringIO()
    code = run_report(
        metrics_urls=[url],
        alerts_url=url,
        roadmap_path=REPO / "deploy" / "roadmap.yaml",
        at=None,
        out=tmp_path / "report.html",
        stdout=out,
        stderr=err,
    )
    assert code == EXIT_UNAVAILABLE
    assert f"the metrics service does not answer at {url}" in err.getvalue()
    assert "make dev" in err.getvalue()
    assert not (tmp_path / "report.html").exists()
