"""deploy/alerts.yaml loads; a bad alerts file is refused naming line and field; receivers'
URLs and secrets are read from the environment."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.alerts_file import (
    AlertsFile,
    AlertsFileError,
    ReceiverKind,
    load_alerts_file,
)
from contracts.records import AlertName
from contracts.roadmap.loader import parse_yaml_model
from services.alerts.receivers import resolve_receivers

ALERTS_PATH = Path(__file__).parents[2] / "deploy" / "alerts.yaml"
TEXT = ALERTS_PATH.read_text(encoding="utf-8")
NAME = Path("a.yaml")

MINIMAL = """\
version: 1
receivers:
  - name: console
    kind: console
routes:
  - receivers: [console]
"""


def _line_starting(text: str, start: str) -> int:
    """1-based number of the only line that starts with ``start``."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def _edit(old: str, new: str, text: str = TEXT) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique"
    return text.replace(old, new)


def _refusal(text: str) -> AlertsFileError:
    with pytest.raises(AlertsFileError) as caught:
        parse_yaml_model(text, NAME, AlertsFile, AlertsFileError)
    return caught.value


def _assert_reported(error: AlertsFileError, line: int, *fragments: str) -> None:
    """Some ``a.yaml:<line>:`` line of the message contains every fragment."""
    rows = [row for row in str(error).splitlines() if row.startswith(f"a.yaml:{line}:")]
    assert any(all(f in row for f in fragments) for row in rows), str(error)


def _parse(text: str) -> AlertsFile:
    return parse_yaml_model(text, NAME, AlertsFile, AlertsFileError)


# -- the shipped file ------------------------------------------------------------------------


def test_shipped_alerts_file_loads() -> None:
    """deploy/alerts.yaml: for 1d / keep 3d by default, DeadlineMissed and Stale at once, the
    pipeline alert on 5m/10m, repeats every minute, and the four receivers."""
    alerts = load_alerts_file(ALERTS_PATH)
    life = alerts.lifecycle
    assert life.timing(AlertName.TARGET_BEHIND).for_ == timedelta(days=1)
    assert life.timing(AlertName.TARGET_BEHIND).keep_firing_for == timedelta(days=3)
    assert life.timing(AlertName.DEADLINE_MISSED).for_ == timedelta(0)
    assert life.timing(AlertName.INDICATOR_STALE).keep_firing_for == timedelta(0)
    assert life.timing(AlertName.PIPELINE_REJECTING).for_ == timedelta(minutes=5)
    assert life.timing(AlertName.PIPELINE_REJECTING).keep_firing_for == timedelta(minutes=10)
    assert life.repeat_interval == timedelta(minutes=1)
    assert life.evaluation_interval == timedelta(seconds=15)
    assert alerts.pipeline.dlq_ratio_limit == Decimal("0.05")
    assert alerts.pipeline.window == timedelta(minutes=10)
    assert alerts.pipeline.min_messages == 20
    assert alerts.retry.max_backoff == timedelta(minutes=1)
    assert alerts.retry.give_up_after == timedelta(minutes=15)
    kinds = {r.name: r.kind for r in alerts.receivers}
    assert kinds == {
        "console": ReceiverKind.CONSOLE,
        "alertmanager": ReceiverKind.ALERTMANAGER,
        "webhook": ReceiverKind.WEBHOOK,
        "chat": ReceiverKind.CHAT,
    }
    webhook = next(r for r in alerts.receivers if r.name == "webhook")
    assert webhook.secret_env == "ALERTS_WEBHOOK_SECRET"
    assert webhook.repeat_interval == timedelta(hours=4)


def test_defaults_of_a_minimal_file() -> None:
    """Omitted sections take their documented defaults (for 10m, keep 30m, repeat 1m, ...)."""
    alerts = _parse(MINIMAL)
    assert alerts.lifecycle.timing(AlertName.TARGET_BEHIND).for_ == timedelta(minutes=10)
    assert alerts.lifecycle.timing(AlertName.TARGET_BEHIND).keep_firing_for == timedelta(minutes=30)
    assert alerts.lifecycle.repeat_interval == timedelta(minutes=1)
    assert alerts.pipeline.dlq_ratio_limit == Decimal("0.05")
    assert alerts.routes[0].continue_ is True
    assert alerts.receivers[0].send_resolved is True


def test_combined_durations() -> None:
    """``1h30m`` is 90 minutes."""
    alerts = _parse(MINIMAL + "lifecycle:\n  defaults:\n    for: 1h30m\n")
    assert alerts.lifecycle.defaults.for_ == timedelta(minutes=90)


def test_missing_file_is_an_alerts_file_error() -> None:
    """A path that cannot be read raises AlertsFileError naming the path and line 1."""
    with pytest.raises(AlertsFileError, match=r"no-such-alerts\.yaml:1:"):
        load_alerts_file(ALERTS_PATH.with_name("no-such-alerts.yaml"))


# -- refusals naming line and field ----------------------------------------------------------


def test_bad_duration_names_its_line_and_field() -> None:
    """``for: 1 day`` is not a duration: reported on its line as lifecycle.defaults.for."""
    text = _edit("    for: 1d ", "    for: 1 day ")
    error = _refusal(text)
    _assert_reported(
        error, _line_starting(text, "    for: 1 day"), "lifecycle.defaults.for", "duration"
    )


def test_webhook_without_secret_env_names_the_receiver() -> None:
    """A webhook must name its HMAC key's variable: reported on the receiver's line."""
    text = _edit("    secret_env: ALERTS_WEBHOOK_SECRET\n", "")
    error = _refusal(text)
    _assert_reported(
        error,
        _line_starting(text, "  - name: webhook"),
        "receivers[2](webhook)",
        "needs 'secret_env'",
    )


def test_both_url_and_url_env_is_refused() -> None:
    """An HTTP receiver takes exactly one of url and url_env."""
    text = _edit(
        "    url_env: ALERTS_ALERTMANAGER_URL\n",
        "    url_env: ALERTS_ALERTMANAGER_URL\n    url: http://alertmanager:9093\n",
    )
    error = _refusal(text)
    _assert_reported(
        error,
        _line_starting(text, "  - name: alertmanager"),
        "receivers[1](alertmanager)",
        "exactly one of 'url' and 'url_env'",
    )


def test_http_receiver_without_any_url_is_refused() -> None:
    """Neither url nor url_env on a chat receiver is refused too."""
    text = _edit("    url_env: ALERTS_CHAT_URL\n", "")
    _assert_reported(
        _refusal(text),
        _line_starting(text, "  - name: chat"),
        "receivers[3](chat)",
        "exactly one of 'url' and 'url_env'",
    )


def test_console_with_a_url_and_secret_on_non_webhook_are_refused() -> None:
    """A console takes no url; only webhooks take secret_env."""
    console = _edit(
        "    kind: console\n", "    kind: console\n    url: http://x.example\n", MINIMAL
    )
    _assert_reported(_refusal(console), 3, "receivers[0](console)", "takes no url")
    text = _edit(
        "    url_env: ALERTS_CHAT_URL\n", "    url_env: ALERTS_CHAT_URL\n    secret_env: S\n"
    )
    _assert_reported(
        _refusal(text), _line_starting(text, "  - name: chat"), "only webhook receivers sign"
    )


def test_non_http_url_in_the_file_is_refused() -> None:
    """A fixed ``url`` must be http(s)."""
    text = _edit("    url_env: ALERTS_ALERTMANAGER_URL\n", "    url: ftp://alertmanager:9093\n")
    error = _refusal(text)
    _assert_reported(
        error, _line_starting(text, "    url: ftp://"), "receivers[1](alertmanager).url"
    )


def test_unknown_receiver_in_a_route_is_named() -> None:
    """A route naming a receiver that does not exist is refused, naming the receiver."""
    error = _refusal(_edit("    receivers: [chat]\n", "    receivers: [pager]\n"))
    assert "routes name unknown receivers: pager" in str(error)


def test_unknown_receiver_in_a_route_names_the_routes_line_and_field() -> None:
    """The unknown receiver is reported under ``routes``, on a line between the ``routes:`` key
    and the offending route (not on line 1 with no field)."""
    text = _edit("    receivers: [chat]\n", "    receivers: [pager]\n")
    (problem,) = _refusal(text).problems
    assert problem.field.startswith("routes")
    assert "pager" in problem.message
    assert (
        _line_starting(text, "routes:")
        <= problem.line
        <= _line_starting(text, "    receivers: [pager]")
    )


def test_duplicate_receiver_names_name_the_receivers_line_and_field() -> None:
    """Two receivers called ``webhook``: reported under ``receivers``, on a line between the
    ``receivers:`` key and the second one, naming the duplicate."""
    text = _edit("  - name: chat ", "  - name: webhook ")
    (problem,) = _refusal(text).problems
    assert problem.field.startswith("receivers")
    assert "receiver names must be unique: webhook" in problem.message
    second = [
        n for n, line in enumerate(text.splitlines(), 1) if line.startswith("  - name: webhook")
    ]
    assert _line_starting(text, "receivers:") <= problem.line <= second[-1]


def test_unknown_alert_name_and_unknown_keys_are_refused() -> None:
    """per_alert keys must be alert names; unknown settings are refused on their line."""
    text = _edit("    RoadmapDeadlineMissed:", "    RoadmapDeadlineMised:")
    _assert_reported(
        _refusal(text), _line_starting(text, "    RoadmapDeadlineMised:"), "lifecycle.per_alert"
    )
    text = _edit("  min_messages: 20", "  min_message: 20")
    _assert_reported(
        _refusal(text), _line_starting(text, "  min_message:"), "pipeline.min_message", "Extra"
    )


@pytest.mark.parametrize("limit", ["0", "1.5", "-0.1"])
def test_dlq_ratio_limit_must_be_in_0_1(limit: str) -> None:
    """The DLQ limit is a share: > 0 and <= 1."""
    text = _edit("  dlq_ratio_limit: 0.05", f"  dlq_ratio_limit: {limit}")
    _assert_reported(
        _refusal(text),
        _line_starting(text, "  dlq_ratio_limit:"),
        "pipeline.dlq_ratio_limit",
    )


def test_routes_and_receivers_are_required() -> None:
    """A file without receivers or routes is refused, naming what is missing."""
    error = _refusal("version: 1\n")
    assert "'receivers' is required" in str(error)
    assert "'routes' is required" in str(error)


# -- resolve_receivers -----------------------------------------------------------------------


@pytest.fixture
def shipped() -> AlertsFile:
    return load_alerts_file(ALERTS_PATH)


def test_unset_url_env_receivers_are_left_out(shipped: AlertsFile) -> None:
    """With no variables set, only the console is active (and has no url or secret)."""
    active = resolve_receivers(shipped, ALERTS_PATH, env={})
    assert list(active) == ["console"]
    assert active["console"].url is None
    assert active["console"].secret is None


def test_an_empty_url_variable_counts_as_unset(shipped: AlertsFile) -> None:
    """ALERTS_CHAT_URL='' disables chat rather than failing."""
    active = resolve_receivers(shipped, ALERTS_PATH, env={"ALERTS_CHAT_URL": ""})
    assert "chat" not in active


def test_set_variables_enable_receivers(shipped: AlertsFile) -> None:
    """Every variable set: all four receivers, URLs from the environment, the webhook's secret
    as bytes."""
    active = resolve_receivers(
        shipped,
        ALERTS_PATH,
        env={
            "ALERTS_ALERTMANAGER_URL": "http://alertmanager:9093",
            "ALERTS_WEBHOOK_URL": "https://hooks.example/roadmap",
            "ALERTS_WEBHOOK_SECRET": "s3cret",
            "ALERTS_CHAT_URL": "https://chat.example/services/T0/B0/x",
        },
    )
    assert sorted(active) == ["alertmanager", "chat", "console", "webhook"]
    assert str(active["alertmanager"].url).startswith("http://alertmanager:9093")
    assert active["webhook"].url == "https://hooks.example/roadmap"
    assert active["webhook"].secret == b"s3cret"
    assert active["chat"].secret is None
    assert active["webhook"].spec.name == "webhook"


@pytest.mark.parametrize("secret", [None, ""])
def test_active_webhook_without_its_secret_is_refused(
    shipped: AlertsFile, secret: str | None
) -> None:
    """An enabled webhook whose ALERTS_WEBHOOK_SECRET is unset or empty is refused, naming the
    variable (and the file)."""
    environ = {"ALERTS_WEBHOOK_URL": "https://hooks.example/roadmap"}
    if secret is not None:
        environ["ALERTS_WEBHOOK_SECRET"] = secret
    with pytest.raises(AlertsFileError) as caught:
        resolve_receivers(shipped, ALERTS_PATH, env=environ)
    message = str(caught.value)
    assert "ALERTS_WEBHOOK_SECRET" in message
    assert "receiver 'webhook'" in message
    assert f"{ALERTS_PATH}:1: receivers:" in message


def test_a_disabled_webhook_needs_no_secret(shipped: AlertsFile) -> None:
    """Without ALERTS_WEBHOOK_URL the webhook is off and its secret is not asked for."""
    assert "webhook" not in resolve_receivers(shipped, ALERTS_PATH, env={})


@pytest.mark.parametrize("url", ["ftp://chat.example/x", "not a url", "chat.example/x"])
def test_non_http_url_from_the_environment_is_refused(shipped: AlertsFile, url: str) -> None:
    """A url_env variable holding something other than an http(s) URL is refused by name."""
    with pytest.raises(AlertsFileError, match="ALERTS_CHAT_URL is not an http"):
        resolve_receivers(shipped, ALERTS_PATH, env={"ALERTS_CHAT_URL": url})


def test_all_environment_problems_are_reported_together(shipped: AlertsFile) -> None:
    """A bad chat URL and a missing webhook secret are both listed."""
    with pytest.raises(AlertsFileError) as caught:
        resolve_receivers(
            shipped,
            ALERTS_PATH,
            env={"ALERTS_WEBHOOK_URL": "https://hooks.example/x", "ALERTS_CHAT_URL": "ftp://x"},
        )
    assert len(caught.value.problems) == 2


def test_a_fixed_url_needs_no_variable() -> None:
    """A receiver with ``url`` in the file is always active with that URL."""
    text = (
        "version: 1\n"
        "receivers:\n"
        "  - name: am\n"
        "    kind: alertmanager\n"
        "    url: http://am.example:9093/\n"
        "routes:\n"
        "  - receivers: [am]\n"
    )
    active = resolve_receivers(_parse(text), NAME, env={})
    assert active["am"].url == "http://am.example:9093/"
