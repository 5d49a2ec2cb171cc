"""Village scoring and ranking routes (viewer): one period's ranking with its breakdown, and
the recent periods for a picker. Formulas: docs/rankings.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.api.deps import RankingsDep, Viewer
from hub.api.errors import unprocessable
from hub.rankings.periods import PeriodError

router = APIRouter(prefix="/api/v1/rankings", tags=["rankings"])


@router.get("", summary="The villages ranked for a period (default: the current quarter), with breakdowns")
def ranking(
    _: Viewer, svc: RankingsDep,
    period: Annotated[str | None, Query(max_length=16, description="2026-Q4, 2026-11 or 2026-W48")] = None,
) -> dict[str, Any]:
    try:
        return svc.ranking(period)
    except PeriodError as exc:
        raise unprocessable(("query", "period"), str(exc)) from None


@router.get("/periods", summary="Recent periods (quarters, months, ISO weeks) for a picker")
def periods(_: Viewer, svc: RankingsDep) -> dict[str, Any]:
    return svc.periods()
