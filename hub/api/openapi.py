"""A route registry: pydantic validates requests and the same models give OpenAPI 3.1."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.api.schemas import ErrorOut
from hub.errors import InvalidInput

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One documented API operation."""

    method: str
    path: str
    operation_id: str
    # None: documented here, mounted by its owner (a channel adapter's route).
    handler: Handler | None
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    auth: bool = True


class ApiRegistry:
    """Collects operations; mounts them on an app and describes them as OpenAPI."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        responses: dict[int, type[BaseModel] | None] | None = None,
        query: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=handler.__name__,
                    handler=handler,
                    summary=summary,
                    tag=tag,
                    body=body,
                    responses=responses or {200: None},
                    query=query or {},
                    auth=auth,
                )
            )
            return handler

        return register

    def describe(self, operation: Operation) -> None:
        """Document an operation whose route is mounted elsewhere."""
        self.operations.append(operation)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(op.method, op.path, op.handler)
            for op in self.operations
            if op.handler is not None
        ]

    def openapi(self, *, title: str, version: str) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every registered operation."""
        schemas: dict[str, Any] = {}

        def ref(model: type[BaseModel]) -> dict[str, str]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            return {"$ref": f"#/components/schemas/{model.__name__}"}

        paths: dict[str, Any] = {}
        error = ref(ErrorOut)
        for op in self.operations:
            item: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": op.operation_id,
                "responses": {},
            }
            params = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
                for n in re.findall(r"{(\w+)}", op.path)
            ]
            params += [
                {
                    "name": n,
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": d,
                }
                for n, d in op.query.items()
            ]
            if params:
                item["parameters"] = params
            if op.body is not None:
                item["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(op.body)}},
                }
            for status, model in op.responses.items():
                resp: dict[str, Any] = {"description": "success" if status < 400 else "error"}
                if model is not None:
                    resp["content"] = {"application/json": {"schema": ref(model)}}
                item["responses"][str(status)] = resp
            for status in (400, 401, 404, 409, 413) if op.auth or op.body else ():
                item["responses"].setdefault(
                    str(status),
                    {"description": "error", "content": {"application/json": {"schema": error}}},
                )
            if op.auth:
                item["security"] = [{"bearer": []}, {"session": []}]
            paths.setdefault(op.path, {})[op.method.lower()] = item
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
                },
            },
        }


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body; any problem is an InvalidInput (400)."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"body is not valid JSON: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    """Serialize a response model."""
    return web.Response(
        text=model.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )


def error_response(status: int, code: str, detail: str) -> web.Response:
    """A JSON error body with a machine code and a human sentence."""
    return web.Response(
        text=ErrorOut(error=code, detail=detail).model_dump_json(),
        status=status,
        content_type="application/json",
    )
