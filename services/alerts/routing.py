"""Who is told about an alert record. Pure.

Routes are tried in order; a route matches when every label it names has one of the listed
values. A receiver gets a record only if it is a notification (firing or resolved), it wants
resolved ones, and, for a repeat, its own ``repeat_interval`` has come round: a repeat is sent
when the time since the episode started crosses a multiple of the interval since the previous
repeat, which needs no memory and gives the same answer after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.alerts_file import ReceiverSpec, Route
from contracts.records import NOTIFIED_STATES, AlertState, AlertTransition


def route(record: AlertTransition, routes: Sequence[Route]) -> list[str]:
    """The receivers ``routes`` name for ``record``'s labels, in order, each once."""
    chosen: list[str] = []
    for candidate in routes:
        matches = all(
            record.labels.get(label) in values for label, values in candidate.match.items()
        )
        if not matches:
            continue
        chosen += [name for name in candidate.receivers if name not in chosen]
        if not candidate.continue_:
            break
    return chosen


def wants(receiver: ReceiverSpec, record: AlertTransition) -> bool:
    """Whether ``receiver`` should be sent ``record`` at all."""
    if record.state not in NOTIFIED_STATES:
        return False
    if record.state is AlertState.RESOLVED:
        return receiver.send_resolved
    interval = receiver.repeat_interval
    if record.repeat == 0 or interval is None or record.previous_at is None:
        return True
    step = interval.total_seconds()
    elapsed_now = (record.at - record.started_at).total_seconds()
    elapsed_before = (record.previous_at - record.started_at).total_seconds()
    return elapsed_now // step > elapsed_before // step
