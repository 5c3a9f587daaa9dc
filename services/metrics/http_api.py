"""Metrics' own HTTP API beside the shared endpoints: an indicator's history."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.metrics.consumer import CanonicalConsumer
from services.metrics.fold import PartitionState
from services.metrics.history import history
from services.metrics.plan import RoadmapPlan

RETRY_AFTER_S = 5
STEPS = ("month",)


def history_route(
    plan: RoadmapPlan,
    consumer: CanonicalConsumer,
    evaluation_time: Callable[[Mapping[int, PartitionState]], datetime],
) -> Route:
    """``GET /v1/indicators/{indicator}/history?step=month[&to=YYYY-MM-DD]``: 200 with
    ``IndicatorHistory`` (up to the end of ``to`` when it is before the evaluation day); 400
    for another step or a bad date, 404 for an unknown indicator, 503 while the state is
    replayed."""

    async def indicator_history(request: Request) -> Response:
        indicator_id = request.path_params["indicator"]
        step = request.query_params.get("step", "month")
        if step not in STEPS:
            return _error(400, f"step must be one of {', '.join(STEPS)}, not {step!r}")
        through = None
        if "to" in request.query_params:
            try:
                through = date.fromisoformat(request.query_params["to"])
            except ValueError:
                return _error(400, f"to must be a date, YYYY-MM-DD: {request.query_params['to']!r}")
        try:
            indicator = plan.indicator(indicator_id)
        except KeyError:
            known = ", ".join(p.indicator.id for p in plan.indicators)
            return _error(404, f"no indicator {indicator_id!r} in {plan.roadmap}; known: {known}")
        if not consumer.caught_up:
            return _error(
                503,
                "the state is still being replayed; history would be partial",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        states = dict(consumer.states)  # computed without awaiting: one consistent view
        answer = history(
            indicator,
            states,
            evaluation_time(states),
            roadmap=plan.roadmap,
            partition_count=consumer.partition_count,
            through=through,
        )
        return Response(answer.model_dump_json(), media_type="application/json")

    return Route("/v1/indicators/{indicator}/history", indicator_history, methods=["GET"])


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))
