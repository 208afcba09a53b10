"""A route registry: pydantic validates requests and the same models give OpenAPI 3.1."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from contract.errors import InvalidInput
from hub.accounts.principal import Principal
from hub.web.api.schemas import MAX_ID, ErrorOut
from hub.web.auth import authorize

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

# Answers any operation may give: the errors middleware maps InvalidInput, NotFound and
# Conflict raised anywhere below a handler, so each is documented everywhere rather than
# guessed per handler (a fuzzer checks that every status we send is documented).
COMMON_ERRORS = {
    400: "the input is invalid",
    404: "a record named in the request does not exist",
    409: "the request conflicts with the current state",
}
AUTH_ERRORS = {
    401: "no valid bearer token or session cookie",
    403: "the caller's role may not do this, or a cookie write was cross-site",
}
BODY_ERRORS = {413: "the body is larger than the configured limit"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """A path or query parameter: what it means and the JSON schema of its value."""

    description: str = ""
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


# A path parameter not declared otherwise is a row id: the database's BIGINT range.
ID_PARAM = Param(description="row id", schema={"type": "integer", "minimum": 1, "maximum": MAX_ID})


def _params(values: dict[str, str | Param] | None) -> dict[str, Param]:
    return {
        name: Param(description=v) if isinstance(v, str) else v
        for name, v in (values or {}).items()
    }


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
    query: dict[str, Param] = field(default_factory=dict)
    # Path parameters that are not row ids (those default to ID_PARAM).
    path_params: dict[str, Param] = field(default_factory=dict)
    # Media types a success may have besides JSON (e.g. text/csv of a report).
    also: tuple[str, ...] = ()
    auth: bool = True
    # The permission of hub.access the caller needs; checked before the handler runs.
    # None only where a test proves the handler decides itself (none does today).
    access: str | None = None


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")


def principal_of(request: web.Request) -> Principal:
    """The caller the registry authorized for this request."""
    return request[PRINCIPAL]


def guard(op: Operation, handler: Handler) -> Handler:
    """``handler`` behind the operation's permission (also for routes a channel mounts)."""
    permission = op.access

    async def guarded(request: web.Request) -> web.StreamResponse:
        if permission is not None:
            request[PRINCIPAL] = await authorize(request, permission)
        return await handler(request)

    guarded.__name__ = handler.__name__
    return guarded


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
        query: dict[str, str | Param] | None = None,
        path_params: dict[str, Param] | None = None,
        also: tuple[str, ...] = (),
        auth: bool = True,
        access: str | None = None,
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
                    query=_params(query),
                    path_params=path_params or {},
                    also=also,
                    auth=auth,
                    access=access,
                )
            )
            return handler

        return register

    def describe(self, operation: Operation) -> None:
        """Document an operation whose route is mounted elsewhere."""
        self.operations.append(operation)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(op.method, op.path, guard(op, op.handler))
            for op in self.operations
            if op.handler is not None
        ]

    def operation(self, method: str, path: str) -> Operation | None:
        """The registered operation of a method and path template."""
        return next((op for op in self.operations if op.method == method and op.path == path), None)

    def openapi(self, *, title: str, version: str) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every registered operation."""
        schemas: dict[str, Any] = {}

        def put(name: str, schema: Any) -> None:
            # Two models of one name would silently share (and break) one component.
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas are named {name!r} in the API")

        def ref(model: type[BaseModel]) -> dict[str, str]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in schema.pop("$defs", {}).items():
                put(name, nested)
            put(model.__name__, schema)
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
                _param(n, "path", op.path_params.get(n, ID_PARAM), required=True)
                for n in re.findall(r"{(\w+)}", op.path)
            ]
            params += [_param(n, "query", p, required=False) for n, p in op.query.items()]
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
                    if status < 300:
                        resp["content"] |= {m: {"schema": {"type": "string"}} for m in op.also}
                item["responses"][str(status)] = resp
            errors = COMMON_ERRORS | (AUTH_ERRORS if op.auth else {})
            errors |= BODY_ERRORS if op.body is not None else {}
            for status, why in sorted(errors.items()):
                item["responses"].setdefault(
                    str(status),
                    {"description": why, "content": {"application/json": {"schema": error}}},
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


def _param(name: str, where: str, param: Param, *, required: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": param.schema}
    if param.description:
        out["description"] = param.description
    return out


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON has not: no number field may hold them.
    raise ValueError(f"{name} is not JSON")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body; any problem is an InvalidInput (400)."""
    raw = await request.read()
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError as err:  # also UnicodeDecodeError and JSONDecodeError
        raise InvalidInput(f"body is not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidInput("body is not valid JSON: nested too deeply") from None
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
