"""The daemon's OpenAPI schema, served at ``/_rh/openapi.json``."""

from __future__ import annotations

from typing import Any

from runhouse._version import __version__

_FRAMES = {
    "application/x-runhouse-frames": {
        "schema": {
            "type": "string",
            "format": "binary",
            "description": "frames: kind (1 byte), length (4 bytes, big-endian), payload",
        }
    }
}
_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            }
        }
    },
}
_AUTH_ERRORS = {"401": _ERROR, "403": _ERROR, "503": _ERROR}  # 503: den_auth without Den


def _param(name: str, where: str = "path", required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}


def _op(summary: str, *params: dict[str, Any], body: str | None = None, ok: Any = None) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": list(params),
        "responses": {"200": ok or {"description": "ok"}, "400": _ERROR, **_AUTH_ERRORS},
    }
    if body == "pickle":
        operation["requestBody"] = {"content": {"application/octet-stream": {}}}
    elif body == "json":
        operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return operation


def schema() -> dict[str, Any]:
    """The OpenAPI 3.1 document for this daemon."""
    frames = {"description": "frames", "content": _FRAMES}
    call = _op(
        "Call a function or a method of a module",
        _param("key"),
        _param("method"),
        _param("run_key", "query", False),
        _param("logs", "query", False),
        _param("detach", "query", False),
        _param("store_as", "query", False),
        _param("op", "query", False),
        _param("errors", "query", False),
        body="json",
        ok={
            "description": 'frames, or the JSON result when the body was JSON {"args", "kwargs"}',
            "content": {**_FRAMES, "application/json": {}},
        },
    )
    call["responses"]["404"] = _ERROR
    get_call = _op(
        "Call with the query string as keyword arguments (values as JSON where they parse), "
        "or read a plain attribute",
        _param("key"),
        _param("method"),
        ok={"description": "the JSON result", "content": {"application/json": {}}},
    )
    get_call["responses"]["404"] = _ERROR
    call["responses"]["500"] = {"description": "the function raised (JSON calls only)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Runhouse daemon", "version": __version__},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": {
            "/_rh/health": {"get": {**_op("Liveness and versions"), "security": []}},
            "/_rh/openapi.json": {"get": {**_op("This schema"), "security": []}},
            "/_rh/status": {"get": _op("Envs, workers, objects and uptime")},
            "/_rh/keys": {"get": _op("Keys of held objects", _param("env", "query", False))},
            "/_rh/envs/{name}": {
                "put": _op("Declare an env", _param("name"), body="json"),
                "get": _op("Whether the daemon knows an env", _param("name")),
            },
            "/_rh/secrets/{name}": {
                "put": _op(
                    'Set secret variables in an env\'s worker: {"env_vars": {"NAME": "value"}} '
                    "(kept in memory only, never reported)",
                    _param("name"),
                    body="json",
                )
            },
            "/_rh/objects/{key}": {
                "put": _op(
                    "Store an object",
                    _param("key"),
                    _param("env", "query", False),
                    _param("resource", "query", False),
                    _param("unique", "query", False),
                    body="pickle",
                ),
                "get": _op("Fetch an object", _param("key"), ok=frames),
                "delete": _op("Delete an object", _param("key")),
            },
            "/_rh/clear": {"post": _op("Delete every object")},
            "/_rh/versions": {
                "get": _op(
                    "An env's Python, cloudpickle and runhouse", _param("env", "query", False)
                )
            },
            "/_rh/cancel/{key}": {"post": _op("Cancel a run or an object's runs", _param("key"))},
            "/_rh/runs/{run_key}": {
                "get": _op("Wait for a run's result", _param("run_key"), ok=frames)
            },
            "/_rh/data/{op}": {
                "post": _op(
                    "A folder operation on the cluster's disk, run in the base env (ls, "
                    "put, read_range, copy, ...; the pickled arguments of a call)",
                    _param("op"),
                    _param("run_key", "query", False),
                    body="pickle",
                    ok=frames,
                )
            },
            "/{key}/{method}": {"post": call, "get": get_call},
        },
    }
