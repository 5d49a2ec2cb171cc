"""Village scoring and ranking routes (viewer): one period's ranking with its breakdown, and
the recent periods for a picker. Formulas: docs/rankings.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError

from hub.api.deps import ServicesDep, Viewer
from hub.rankings.periods import PeriodError
from hub.rankings.service import RankingService
from hub.services import Services


def _service(services: Services) -> RankingService:
    if services.rankings is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "rankings are not available")
    return services.rankings  # type: ignore[no-any-return]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/rankings", tags=["rankings"])

    @router.get("", summary="The villages ranked for a period (default: the current quarter), with breakdowns")
    def ranking(
        services: ServicesDep, _: Viewer,
        period: Annotated[str | None, Query(max_length=16, description="2026-Q4, 2026-11 or 2026-W48")] = None,
    ) -> dict[str, Any]:
        svc = _service(services)
        try:
            return svc.ranking(period)
        except PeriodError as exc:
            raise RequestValidationError(
                [{"loc": ("query", "period"), "msg": str(exc), "type": "value_error"}]) from None

    @router.get("/periods", summary="Recent periods (quarters, months, ISO weeks) for a picker")
    def periods(services: ServicesDep, _: Viewer) -> dict[str, Any]:
        return _service(services).periods()

    return router
