"""Den's HTTP errors: one exception type carrying the contract's JSON body, and the handlers
that turn it, validation errors, unknown routes and bugs into that body.

    {"error": CODE, "message": TEXT, ...extra}

TEXT says what to do. A 5xx is a bug: its message says so, and the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("runhouse.den")

# The codes a plain HTTP status maps to when Starlette raises it (unknown route, wrong method).
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "exists",
    413: "too_large",
    422: "invalid",
}


class ErrorBody(BaseModel):
    """Every error's body; some codes add fields (``current_version``, ``versions``,
    ``unknown``)."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str


_MEANINGS = {
    400: "a bad path or value (the message says which rule)",
    401: "no token where one is needed, or a token that is unknown, revoked or expired",
    403: "not allowed (writes never reveal whether something exists)",
    404: "nothing there, or nothing the caller may see",
    409: "exists, version_conflict or name_taken",
    413: "the request body is over the limit",
    422: "the body or query does not validate (the message lists the fields)",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning} for status, meaning in _MEANINGS.items()
}


class ApiError(Exception):
    """An answer other than 2xx: status, contract code, message, and extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "message": self.message, **self.extra}


def bad_request(message: str, **extra: Any) -> ApiError:
    """400: the request cannot be understood as it is."""
    return ApiError(400, "bad_request", message, **extra)


def unauthenticated(message: str) -> ApiError:
    """401: no usable token."""
    return ApiError(401, "unauthenticated", message)


def forbidden(message: str) -> ApiError:
    """403: known caller, not allowed."""
    return ApiError(403, "forbidden", message)


def not_found(message: str, **extra: Any) -> ApiError:
    """404: nothing there, or nothing the caller may see."""
    return ApiError(404, "not_found", message, **extra)


def conflict(code: str, message: str, **extra: Any) -> ApiError:
    """409: ``exists``, ``version_conflict`` or ``name_taken``."""
    return ApiError(409, code, message, **extra)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the contract's JSON body."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [_describe(error) for error in exc.errors()]
        message = "invalid request: " + "; ".join(problems)
        return JSONResponse({"error": "invalid", "message": message}, status_code=422)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path} (see /v1/openapi.json)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse(
            {"error": code, "message": message},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("bug while serving %s %s", request.method, request.url.path)
        message = (
            f"Den failed on this request ({type(exc).__name__}); this is a bug in Den: "
            "its log has the traceback. Please report it."
        )
        return JSONResponse({"error": "internal", "message": message}, status_code=500)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    return f"{where}: {error.get('msg', 'invalid')}"
