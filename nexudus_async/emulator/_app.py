"""The aiohttp application: routes, and the gate every resource request passes.

A resource request goes through, in order: credentials, role, body decoding, throttle,
fault plan, then the handler. The throttle check, the fault plan and the throttle's
record of the request happen with no await in between, so concurrent requests cannot
both take the last free slot of a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import hdrs, web

from . import _handlers, _responses
from ._auth import GrantError, Principal
from ._config import role
from ._faults import Fault, FaultPlan
from ._state import EmulatorState
from ._throttle import retry_after_seconds

__all__ = ["COLLECTION_PATH", "MAX_BODY_BYTES", "TOKEN_PATH", "build_app"]

TOKEN_PATH: Final = "/api/token"
COLLECTION_PATH: Final = "/api/crm/crmopportunityimportfiles"
#: Larger request bodies answer 413; aiohttp's default, stated so it can be reported.
MAX_BODY_BYTES: Final = 1024 * 1024

_FORM: Final = "application/x-www-form-urlencoded"
_JSON_TYPES: Final = frozenset({"application/json", "text/json"})
_LINGER_NOW: Final = struct.pack("ii", 1, 0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Op(enum.Enum):
    """A resource operation: the role it needs, whether it writes, whether it has a body."""

    # The first item only keeps the values distinct; equal values would make aliases.
    LIST = ("list", "List", False, False)
    READ = ("read", "Read", False, False)
    CREATE = ("create", "Create", True, True)
    UPDATE = ("update", "Edit", True, True)
    DELETE = ("delete", "Delete", True, False)
    COMMANDS = ("commands", "List", False, False)
    RUN_COMMAND = ("run_command", "Update", True, True)

    def __init__(self, label: str, action: str, write: bool, has_body: bool) -> None:
        self.role = role(action)
        self.write = write
        self.has_body = has_body


def _reset(request: web.Request) -> None:
    """Drop the connection with a TCP reset: the client gets no answer at all."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # A zero linger time makes close() send RST instead of an orderly FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
    transport.abort()


async def _read_json(
    request: web.Request,
) -> tuple[Mapping[str, Any] | None, web.Response | None]:
    """The decoded JSON object of a body, or the 400 that explains why there is none."""
    data = await request.read()
    content_type = request.content_type.lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        message = f"The request body must be JSON sent as Content-Type: application/json, not {content_type}."
        return None, _responses.message_response(400, message)
    try:
        body = _responses.decode_json(data)
    except ValueError as exc:
        return None, _responses.message_response(
            400, f"The request body is not valid JSON: {exc}"
        )
    if not isinstance(body, dict):
        return None, _responses.message_response(
            400, "The request body must be a JSON object."
        )

    return body, None


class _Gate:
    """Runs every resource request through credentials, throttle and faults."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def route(self, methods: Mapping[str, _Op]) -> Handler:
        """The handler for one path, with the operation each method performs."""
        allowed = ", ".join(methods)

        async def handle(request: web.Request) -> web.StreamResponse:
            op = methods.get(request.method)
            return await self._serve(request, op, allowed)

        return handle

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        """Any path the API does not have."""
        return await self._serve(request, None, "")

    async def token(self, request: web.Request) -> web.StreamResponse:
        """POST /api/token: the password and refresh grants, form-encoded only."""
        state = self._state
        state.stats.requests += 1
        if request.method != hdrs.METH_POST:
            return _responses.message_response(
                405, "The token endpoint accepts only POST.", headers={"Allow": "POST"}
            )
        if request.content_type.lower() != _FORM:
            await request.read()
            return _responses.oauth_error(
                "unsupported_grant_type",
                f"The token endpoint reads only {_FORM} bodies.",
            )

        posted = await request.post()
        form = {name: value for name, value in posted.items() if isinstance(value, str)}
        client_id = self._client_id(request, form)
        grant = form.get("grant_type", "")
        try:
            if grant == "password":
                answer = state.auth.password_grant(form, client_id)
            elif grant == "refresh_token":
                answer = state.auth.refresh_grant(form, client_id)
            else:
                return _responses.oauth_error(
                    "unsupported_grant_type",
                    "grant_type must be password or refresh_token.",
                )
        except GrantError as exc:
            return _responses.oauth_error(exc.error, exc.description)
        state.stats.token_grants += 1

        return _responses.json_response(
            answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )

    def _client_id(self, request: web.Request, form: Mapping[str, str]) -> str | None:
        source = self._state.config.client_id_from
        from_header = request.headers.get("client_id") if source != "form" else None
        from_form = form.get("client_id") if source != "header" else None
        return from_header or from_form or None

    async def _serve(
        self, request: web.Request, op: _Op | None, allowed: str
    ) -> web.StreamResponse:
        state = self._state
        stats = state.stats
        stats.requests += 1

        principal = state.auth.authenticate(request.headers.get(hdrs.AUTHORIZATION))
        if principal is None:
            stats.unauthorized += 1
            return _responses.unauthorized()
        if op is None:
            if allowed:
                return _responses.message_response(
                    405,
                    f"The method {request.method} is not allowed here.",
                    headers={"Allow": allowed},
                )
            return _responses.message_response(
                404, f"No API route matches {request.path}."
            )
        if not principal.user.may(op.role):
            stats.unauthorized += 1
            return _responses.unauthorized(state.config.missing_role_status)

        body: Mapping[str, Any] | None = None
        body_error: web.Response | None = None
        if op.has_body:
            body, body_error = await _read_json(request)
        name = (
            body.get("Name")
            if body is not None and op in (_Op.CREATE, _Op.UPDATE)
            else None
        )

        refusal, plan = self._admit(
            principal, op, name if isinstance(name, str) else None
        )
        if refusal is not None:
            return refusal

        if plan is not None:
            if plan.delay:
                await asyncio.sleep(plan.delay)
            if plan.action is not None and plan.answers_before_store:
                return self._fault_answer(request, plan.action)

        if body_error is not None:
            response = body_error
        else:
            response = self._dispatch(request, op, principal, body)

        if plan is not None and plan.action is not None:
            if plan.action.kind == "reset_after_store":
                _reset(request)
            elif plan.action.kind == "empty200":
                response = web.Response(status=200)

        return response

    def _admit(
        self, principal: Principal, op: _Op, name: str | None
    ) -> tuple[web.Response | None, FaultPlan | None]:
        """Throttle check, fault plan and the throttle's record: a refusal, or the plan.

        Synchronous on purpose (see the module docstring).
        """
        state = self._state
        throttle = state.throttle
        now = throttle.now()
        if throttle.active:
            wait = throttle.wait_time(principal.client, write=op.write, now=now)
            if wait > 0:
                state.stats.throttled += 1
                status = state.config.throttle_status
                return _responses.throttled(status, retry_after_seconds(wait)), None

        plan = state.faults.plan(write=op.write, create=op is _Op.CREATE, name=name)
        if plan is not None:
            self._count(plan)
        # A forced throttle answers like the real one, so like it, it is not counted.
        if plan is None or plan.action is None or plan.action.kind != "throttle":
            throttle.record(principal.client, write=op.write, now=now)
            if op.write:
                state.stats.writes += 1

        return None, plan

    def _dispatch(
        self,
        request: web.Request,
        op: _Op,
        principal: Principal,
        body: Mapping[str, Any] | None,
    ) -> web.Response:
        state = self._state
        if op is _Op.LIST:
            return _handlers.list_records(state, request.query)
        if op is _Op.COMMANDS:
            return _handlers.list_commands(state, request.query)
        if op is _Op.READ:
            return _handlers.get_one(state, request.match_info["id"])
        if op is _Op.DELETE:
            return _handlers.delete(state, principal, request.match_info["id"])
        assert body is not None
        if op is _Op.CREATE:
            return _handlers.create(state, principal, body)
        if op is _Op.UPDATE:
            return _handlers.update(state, principal, body)
        return _handlers.run_command(state, principal, body)

    def _count(self, plan: FaultPlan) -> None:
        stats = self._state.stats
        stats.faults_fired += 1
        for fault in plan.fired:
            stats.fault_kinds[fault.kind] = stats.fault_kinds.get(fault.kind, 0) + 1

    def _fault_answer(self, request: web.Request, fault: Fault) -> web.Response:
        kind, value = fault.kind, fault.value
        if kind == "throttle":
            self._state.stats.throttled += 1
            return _responses.throttled(
                self._state.config.throttle_status, int(value or 0)
            )
        if kind == "html":
            return _responses.html_page(int(value or 503))
        if kind == "unsuccessful200":
            return _responses.message_response(
                200, "An error occurred while saving the record."
            )
        if kind == "reset_before_store":
            _reset(request)
            return web.Response(status=500)
        return _responses.message_response(
            int(value or 500), "An error occurred while processing the request."
        )


@web.middleware
async def _too_large_as_envelope(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Answer a body over aiohttp's size limit with the envelope, not plain text."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _responses.message_response(
            413, f"The request body is larger than {MAX_BODY_BYTES} bytes."
        )


def build_app(state: EmulatorState) -> web.Application:
    """The emulator's application over ``state``."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[_too_large_as_envelope]
    )
    gate = _Gate(state)
    collection = gate.route({"GET": _Op.LIST, "POST": _Op.CREATE, "PUT": _Op.UPDATE})

    app.router.add_route("*", TOKEN_PATH, gate.token)
    app.router.add_route("*", COLLECTION_PATH, collection)
    app.router.add_route("*", COLLECTION_PATH + "/", collection)
    app.router.add_route(
        "*", COLLECTION_PATH + "/commands", gate.route({"GET": _Op.COMMANDS})
    )
    app.router.add_route(
        "*", COLLECTION_PATH + "/runcommand", gate.route({"POST": _Op.RUN_COMMAND})
    )
    app.router.add_route(
        "*",
        COLLECTION_PATH + "/{id}",
        gate.route({"GET": _Op.READ, "DELETE": _Op.DELETE}),
    )
    app.router.add_route("*", "/{tail:.*}", gate.unknown)

    return app
