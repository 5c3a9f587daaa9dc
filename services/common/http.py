"""The HTTP surface every service shares: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str = ""


ReadinessCheck = Callable[[], Awaitable[CheckResult]]


def health_app(
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """An ASGI app serving the shared endpoints plus a service's own ``routes``.

    ``/readyz`` answers 200 only when every named check passes, else 503 with each check's detail.
    """

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        results = {name: await check() for name, check in checks.items()}
        ready = all(result.ok for result in results.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {n: {"ok": r.ok, "detail": r.detail} for n, r in results.items()},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    shared = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=[*shared, *routes])
