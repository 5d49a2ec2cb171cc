"""Registry routes: villages and groups, township import/export, device registration edits.

GET /api/v1/devices and /devices/{id} (registry joined with live state) live in routes/devices.py.
Every write (villages, groups, devices, imports) is recorded in the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from hub.api.deps import Admin, RegistryDep, ServicesDep, Viewer
from hub.api.redact import redact_urls
from hub.api.schemas.registry import (
    DeviceBody,
    DeviceOut,
    GroupBody,
    GroupOut,
    ImportOut,
    VillageBody,
    VillageOut,
)
from hub.auth import Principal
from hub.registry.model import Device, Group, ImportReport, Village
from hub.registry.store import Registry, RegistryError
from hub.registry.township_file import (
    TownshipFileError,
    parse_township,
    to_csv,
    to_document,
    to_yaml,
)
from hub.services import Services
from hub.topics import is_valid_id

ID_RULE = "must be 1-64 letters, digits, _ or -, starting with a letter or digit"


def _device_out(d: Device) -> DeviceOut:
    return DeviceOut(id=d.id, kind=d.kind, name=d.name, village=d.village, group=d.group, lat=d.lat,
                     lon=d.lon, tags=dict(d.tags), stream_url=d.stream_url, registered=d.registered)


def _unprocessable(errors: list[str]) -> JSONResponse:
    """422 in the app's shape: a summary plus one entry per error naming where it is."""
    items = []
    for e in errors:
        where, sep, message = e.partition(": ")
        items.append({"field": where or "body", "message": message if sep else e, "type": "value_error"})
    head = "; ".join(errors[:5]) + (f"; … {len(errors) - 5} more" if len(errors) > 5 else "")
    return JSONResponse({"detail": head, "errors": items}, status_code=422)


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A township file (docs/registry.md): YAML/JSON or CSV as the body, or a "
        "multipart form with a `file` field.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                           "required": ["file"]}
            },
        },
    }
}

_FORMATS = {"csv": "csv", "yaml": "yaml", "yml": "yaml", "json": "yaml"}


def _format_of(content_type: str, explicit: str | None) -> Literal["yaml", "csv"] | None:
    if explicit:
        return "csv" if explicit == "csv" else "yaml"
    ct = content_type.split(";")[0].strip().lower()
    if ct.endswith("csv"):
        return "csv"
    if "yaml" in ct or ct.endswith("json"):
        return "yaml"
    return None  # guess from the content


def _audited(services: Services, who: Principal, action: str, target: str | None, detail: Any = None) -> None:
    # stream URLs may carry camera credentials: the audit log keeps them out
    services.tokens.audit(who, f"registry.{action}", target,
                          "" if detail is None else json.dumps(redact_urls(detail), ensure_ascii=False, default=str))


def _counts(registry: Registry) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    by_village: dict[str, dict[str, int]] = {}
    by_group: dict[str, dict[str, int]] = {}
    for d in registry.devices():
        if d.village:
            c = by_village.setdefault(d.village, {"camera": 0, "speaker": 0, "light": 0})
            c[d.kind] += 1
        if d.group:
            c = by_group.setdefault(d.group, {"camera": 0, "speaker": 0, "light": 0})
            c[d.kind] += 1
    return by_village, by_group


def _group_out(g: Group, by_group: dict[str, dict[str, int]]) -> GroupOut:
    c = by_group.get(g.id, {})
    return GroupOut(id=g.id, village=g.village, name=g.name, cameras=c.get("camera", 0),
                    speakers=c.get("speaker", 0), lights=c.get("light", 0))


def _village_out(registry: Registry, v: Village, by_village: dict[str, dict[str, int]],
                 by_group: dict[str, dict[str, int]]) -> VillageOut:
    c = by_village.get(v.id, {})
    return VillageOut(
        id=v.id, name=v.name, lat=v.lat, lon=v.lon, quiet_hours=v.quiet_hours,
        cameras=c.get("camera", 0), speakers=c.get("speaker", 0), lights=c.get("light", 0),
        groups=[_group_out(g, by_group) for g in registry.groups(village=v.id)],
    )


def _remove(remove: Callable[[str], bool], what: str, record_id: str) -> None:
    """Remove an empty village or group: 409 while it still holds something, 404 when unknown."""
    try:
        removed = remove(record_id)
    except RegistryError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "; ".join(exc.errors)) from None
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {record_id}")


router = APIRouter(prefix="/api/v1", tags=["registry"])


@router.get("/villages", response_model=list[VillageOut])
def list_villages(_: Viewer, registry: RegistryDep) -> list[VillageOut]:
    """Every village with its groups and device counts."""
    by_village, by_group = _counts(registry)
    return [_village_out(registry, v, by_village, by_group) for v in registry.villages()]


@router.get("/villages/{village_id}", response_model=VillageOut)
def get_village(village_id: str, _: Viewer, registry: RegistryDep) -> VillageOut:
    v = registry.get_village(village_id)
    if v is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no village {village_id}")
    by_village, by_group = _counts(registry)
    return _village_out(registry, v, by_village, by_group)


@router.put("/villages/{village_id}", response_model=VillageOut,
            responses={422: {"description": "a field is invalid"}})
def put_village(village_id: str, body: VillageBody, who: Admin, registry: RegistryDep,
                services: ServicesDep) -> Any:
    """Create or edit a village (admin)."""
    if not is_valid_id(village_id):
        return _unprocessable([f"id: {ID_RULE}"])
    try:
        v = registry.upsert_village(Village(village_id, body.name, body.lat, body.lon, body.quiet_hours))
    except RegistryError as exc:
        return _unprocessable(exc.errors)
    _audited(services, who, "village.put", village_id, body.model_dump())
    by_village, by_group = _counts(registry)
    return _village_out(registry, v, by_village, by_group)


@router.delete("/villages/{village_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such village"},
                          409: {"description": "the village still has groups or devices"}})
def delete_village(village_id: str, who: Admin, registry: RegistryDep, services: ServicesDep) -> Response:
    """Remove an empty village (admin)."""
    _remove(registry.delete_village, "village", village_id)
    _audited(services, who, "village.delete", village_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/groups", response_model=list[GroupOut])
def list_groups(
    _: Viewer, registry: RegistryDep,
    village: Annotated[str | None, Query(description="only this village's groups")] = None,
) -> list[GroupOut]:
    """村民组, each with its village and device counts."""
    by_group = _counts(registry)[1]
    return [_group_out(g, by_group) for g in registry.groups(village=village)]


@router.put("/groups/{group_id}", response_model=GroupOut,
            responses={422: {"description": "a field is invalid or the village is unknown"}})
def put_group(group_id: str, body: GroupBody, who: Admin, registry: RegistryDep, services: ServicesDep) -> Any:
    """Create or edit a group (admin)."""
    if not is_valid_id(group_id):
        return _unprocessable([f"id: {ID_RULE}"])
    try:
        g = registry.upsert_group(Group(group_id, body.village, body.name))
    except RegistryError as exc:
        return _unprocessable(exc.errors)
    _audited(services, who, "group.put", group_id, body.model_dump())
    by_group = _counts(registry)[1]
    return _group_out(g, by_group)


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such group"},
                          409: {"description": "the group still has devices"}})
def delete_group(group_id: str, who: Admin, registry: RegistryDep, services: ServicesDep) -> Response:
    """Remove an empty group (admin)."""
    _remove(registry.delete_group, "group", group_id)
    _audited(services, who, "group.delete", group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/devices/{device_id}", response_model=DeviceOut,
            responses={201: {"description": "newly registered"},
                       422: {"description": "a field is invalid or a reference is unknown"}})
def put_device(device_id: str, body: DeviceBody, response: Response, who: Admin, registry: RegistryDep,
               services: ServicesDep) -> Any:
    """Register a device or edit its registration (admin). A device seen unregistered becomes registered."""
    if not is_valid_id(device_id):
        return _unprocessable([f"id: {ID_RULE}"])
    before = registry.get(device_id)
    try:
        d = registry.upsert_device(Device(device_id, body.kind, body.name, body.village, body.group,
                                          body.lat, body.lon, dict(body.tags), body.stream_url))
    except RegistryError as exc:
        return _unprocessable(exc.errors)
    _audited(services, who, "device.put", device_id, body.model_dump())
    if before is None or not before.registered:
        response.status_code = status.HTTP_201_CREATED
    return _device_out(d)


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such device"}})
def delete_device(device_id: str, who: Admin, registry: RegistryDep, services: ServicesDep) -> Response:
    """Remove a device from the registry (admin). If it keeps publishing it comes back unregistered."""
    if not registry.delete_device(device_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    _audited(services, who, "device.delete", device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/registry/import", response_model=ImportOut, openapi_extra=_IMPORT_BODY,
             responses={422: {"description": "errors naming the row (CSV) or line (YAML) and field"}})
async def import_township(
    request: Request,
    replace: Annotated[bool, Query(description="remove registered records the file does not list")] = False,
    dry_run: Annotated[bool, Query(description="check and report what would change; write nothing")] = False,
    format: Annotated[Literal["yaml", "csv", "json"] | None, Query(description="default: from the content type or the content")] = None,
    *,
    who: Admin,
    registry: RegistryDep,
    services: ServicesDep,
) -> Any:
    """Import a township file, all or nothing (admin)."""
    content_type = request.headers.get("content-type", "")
    filename: str | None = None
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _unprocessable(["file: required (a multipart field named file)"])
        data = await upload.read()
        filename = upload.filename
        fmt = _format_of(upload.content_type or "", format)
    else:
        data = await request.body()
        fmt = _format_of(content_type, format)
    if not data.strip():
        return _unprocessable(["body: empty; send a township file"])

    def work() -> ImportReport:
        town = parse_township(data, fmt=fmt, filename=filename)
        return registry.import_township(town, replace=replace, dry_run=dry_run)

    try:
        report = await run_in_threadpool(work)
    except (TownshipFileError, RegistryError) as exc:
        return _unprocessable(exc.errors)
    out = ImportOut(**{k: getattr(report, k) for k in ImportOut.model_fields})
    if not dry_run:
        await run_in_threadpool(_audited, services, who, "import", None,
                                {"replace": replace, "filename": filename, **out.model_dump(exclude={"seconds"})})
    return out


@router.get("/registry/export",
            responses={200: {"content": {"application/yaml": {}, "text/csv": {}, "application/json": {}}}})
def export_township(
    _: Admin, registry: RegistryDep, format: Annotated[Literal["yaml", "csv", "json"], Query()] = "yaml",
) -> Response:
    """The registered villages, groups and devices as a township file (admin: stream URLs may
    carry camera credentials)."""
    town = registry.township()
    if format == "csv":
        return PlainTextResponse(to_csv(town), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="township.csv"'})
    if format == "json":
        return Response(json.dumps(to_document(town), ensure_ascii=False), media_type="application/json")
    return Response(to_yaml(town), media_type="application/yaml; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="township.yaml"'})
