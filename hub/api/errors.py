"""Errors the routes raise in the app's own shapes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.exceptions import RequestValidationError


def unprocessable(loc: Sequence[str], msg: str) -> RequestValidationError:
    """A 422 raised as a validation error, so the app reports it like any other (naming the field)."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": "value_error"}])
