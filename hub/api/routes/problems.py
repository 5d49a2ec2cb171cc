"""The problem ledger (整改台账) routes: list, create, one, transitions, photos, export, delete.

Roles: viewer reads, operator creates and moves problems and adds photos, admin deletes.
Errors: 404 unknown problem/photo, 409 a transition the state machine forbids (or photos on a
closed problem), 422 naming the field, 503 when the camera cannot be asked (MQTT down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError

from hub.api.deps import Admin, Operator, ProblemsDep, RegistryDep, ServicesDep, Viewer
from hub.api.errors import unprocessable
from hub.api.schemas.problems import Category, PhotoFromCamera, ProblemIn, StateName, TransitionIn
from hub.problems import export
from hub.problems.machine import RoleForbidden, TransitionForbidden
from hub.problems.model import MAX_PHOTO_BYTES, Filters, Photo
from hub.problems.service import Conflict, Invalid, NewProblem, NotFound, Unavailable

EXPORT_MAX_ROWS = 50_000
JPEG_TYPES = ("image/jpeg", "image/pjpeg", "image/jpg")


def _errors(exc: Exception, where: str = "body") -> Exception:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, TransitionForbidden | Conflict):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, RoleForbidden):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))
    if isinstance(exc, Invalid):
        return unprocessable((where, exc.field), exc.message)
    if isinstance(exc, Unavailable):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    return exc


def _filters(state: StateName | None, village: str | None, category: Category | None,
             overdue: bool | None) -> Filters:
    return Filters(state=state, village=village, category=category, overdue=overdue)


router = APIRouter(prefix="/api/v1/problems", tags=["problems"])


@router.get("", summary="Problems, newest first (filters: state, village, category, overdue)")
def list_problems(
    services: ServicesDep, _: Viewer, svc: ProblemsDep,
    state: StateName | None = None,
    village: Annotated[str | None, Query(max_length=64)] = None,
    category: Category | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    items, total = svc.query(_filters(state, village, category, overdue), limit, offset)
    now = services.clock.now()
    return {"items": [p.to_json(now) for p in items], "total": total}


@router.get("/export", summary="The ledger as CSV or XLSX (Chinese headers), with the list filters",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, export.XLSX_TYPE: {}}}})
def export_problems(
    services: ServicesDep, _: Viewer, svc: ProblemsDep, reg: RegistryDep,
    format: Literal["csv", "xlsx"] = "csv",
    state: StateName | None = None,
    village: Annotated[str | None, Query(max_length=64)] = None,
    category: Category | None = None,
    overdue: bool | None = None,
) -> Response:
    items, total = svc.query(_filters(state, village, category, overdue), EXPORT_MAX_ROWS, 0)
    now = services.clock.now()

    def village_name(v: str) -> str | None:
        vil = reg.get_village(v)
        return vil.name if vil else None

    def group_name(g: str) -> str | None:
        grp = reg.get_group(g)
        return grp.name if grp else None

    table = export.rows(items, now, services.settings.zone, village_name, group_name)
    day = datetime.fromtimestamp(now, services.settings.zone).strftime("%Y%m%d")
    if format == "xlsx":
        body, media, ext = export.to_xlsx(table), export.XLSX_TYPE, "xlsx"
    else:
        body, media, ext = export.to_csv(table), "text/csv; charset=utf-8", "csv"
    name = f"整改台账-{day}.{ext}"
    headers = {
        "Content-Disposition": f"attachment; filename=\"problems-{day}.{ext}\"; filename*=UTF-8''{quote(name)}",
        "X-Total-Count": str(total), "Cache-Control": "no-store",
    }
    return Response(body, media_type=media, headers=headers)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a problem (operator)")
def create(body: ProblemIn, services: ServicesDep, who: Operator, svc: ProblemsDep) -> dict[str, Any]:
    try:
        p = svc.create(NewProblem(**body.model_dump()), who)
    except Exception as exc:
        raise _errors(exc) from None
    return p.to_json(services.clock.now())


@router.get("/{problem_id}", summary="One problem with its photos and history")
def get_one(problem_id: str, services: ServicesDep, _: Viewer, svc: ProblemsDep) -> dict[str, Any]:
    try:
        p = svc.get(problem_id)
    except NotFound as exc:
        raise _errors(exc) from None
    return p.to_json(services.clock.now())


@router.delete("/{problem_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete a problem and its photos (admin)")
def delete(problem_id: str, who: Admin, svc: ProblemsDep) -> Response:
    try:
        svc.delete(problem_id, who)
    except NotFound as exc:
        raise _errors(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{problem_id}/transitions", summary="Move a problem to another state (operator)",
             responses={409: {"description": "the state machine forbids this transition"}})
def transition(problem_id: str, body: TransitionIn, services: ServicesDep, who: Operator,
               svc: ProblemsDep) -> dict[str, Any]:
    try:
        p = svc.transition(problem_id, body.to, who, owner=body.owner, deadline=body.deadline, note=body.note)
    except Exception as exc:
        raise _errors(exc) from None
    return p.to_json(services.clock.now())


@router.post(
    "/{problem_id}/photos", status_code=status.HTTP_201_CREATED,
    summary="Attach a photo: a JPEG upload (multipart `file` + `stage`) or a camera's snapshot "
            "(JSON `{stage, from_camera, fresh}`; fresh asks the camera now and waits up to 15 s, "
            "else answers 202 with pending: true and attaches it when it comes)",
    responses={202: {"description": "fresh snapshot requested; attached when it arrives"},
               409: {"description": "the problem is closed or rejected"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file", "stage"], "properties": {
            "file": {"type": "string", "format": "binary"},
            "stage": {"type": "string", "enum": ["before", "after"]}}}},
        "application/json": {"schema": PhotoFromCamera.model_json_schema()},
    }}},
)
async def add_photo(problem_id: str, request: Request, who: Operator, svc: ProblemsDep) -> JSONResponse:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    result: Photo | Any
    try:
        if ctype == "multipart/form-data":
            data, stage = await _read_upload(request)
            result = await run_in_threadpool(svc.add_upload, problem_id, stage, data, who)
        elif ctype == "application/json":
            try:
                spec = PhotoFromCamera.model_validate_json(await request.body())
            except ValidationError as exc:
                raise RequestValidationError(
                    [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]) from None
            if spec.fresh:
                result = await run_in_threadpool(svc.request_fresh, problem_id, spec.stage, spec.from_camera, who)
            else:
                result = await run_in_threadpool(svc.add_from_camera, problem_id, spec.stage,
                                                 spec.from_camera, who)
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                "send multipart/form-data (file, stage) or application/json")
    except (NotFound, Conflict, Invalid, Unavailable, TransitionForbidden) as exc:
        raise _errors(exc) from None
    if isinstance(result, Photo):
        return JSONResponse(result.to_json(), status_code=status.HTTP_201_CREATED)
    return JSONResponse(result.to_json(), status_code=status.HTTP_202_ACCEPTED)


@router.get("/{problem_id}/photos/{photo_id}", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown photo"}},
            summary="One photo of a problem (JPEG)")
def photo(problem_id: str, photo_id: str, _: Viewer, svc: ProblemsDep) -> FileResponse:
    try:
        path = svc.photo_path(problem_id, photo_id)
    except NotFound as exc:
        raise _errors(exc) from None
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})



async def _read_upload(request: Request) -> tuple[bytes, str]:
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as exc:  # malformed multipart, too many parts
        raise unprocessable(("body", "file"), f"unreadable multipart body: {exc}") from None
    try:
        upload = form.get("file")
        stage = form.get("stage")
        if upload is None or isinstance(upload, str):
            raise unprocessable(("body", "file"), "a JPEG file part named `file` is required")
        if not isinstance(stage, str) or stage not in ("before", "after"):
            raise unprocessable(("body", "stage"), "`stage` must be before or after")
        ctype = (upload.content_type or "").lower()
        if ctype not in (*JPEG_TYPES, "application/octet-stream"):
            raise unprocessable(("body", "file"), f"must be image/jpeg, got {ctype or 'no type'}")
        data = await upload.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise HTTPException(413, f"photo over {MAX_PHOTO_BYTES} bytes")
        return data, stage
    finally:
        await form.close()
