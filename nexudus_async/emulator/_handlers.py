"""The resource operations, once a request is authenticated, admitted and decoded.

Each handler is synchronous: it reads and changes the store without awaiting, so no
other request can interleave with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._auth import Principal
from ._commands import check_command, describe_commands
from ._config import ENTITY
from ._listing import QueryError, page_body, parse_id_list, parse_list_query, select
from ._responses import (
    envelope,
    json_response,
    message_response,
    not_found,
    problems_response,
)
from ._state import EmulatorState
from ._validation import Problem, check_record

__all__ = [
    "create",
    "delete",
    "get_one",
    "list_commands",
    "list_records",
    "run_command",
    "update",
]


def _rejected(
    state: EmulatorState, problems: tuple[Problem, ...] | list[Problem]
) -> web.Response:
    state.stats.rejected += 1
    return problems_response(problems, status=state.config.validation_status)


def _written(
    message: str, row: Mapping[str, Any], principal: Principal
) -> web.Response:
    return json_response(
        envelope(
            status=200,
            message=message,
            value={"Id": row["Id"]},
            successful=True,
            updated_on=row.get("UpdatedOn"),
            updated_by=principal.user.email,
        )
    )


def _record_id(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def create(
    state: EmulatorState, principal: Principal, body: Mapping[str, Any]
) -> web.Response:
    """POST: validate and store a new record."""
    config = state.config
    checked = check_record(
        body,
        businesses=config.businesses,
        strict_names=config.strict_names,
        with_id=False,
    )
    if checked.record is None:
        return _rejected(state, checked.problems)

    row = state.store.add(checked.record, updated_by=principal.user.email)
    state.stats.creates += 1

    return _written(f"{ENTITY} was successfully created.", row, principal)


def update(
    state: EmulatorState, principal: Principal, body: Mapping[str, Any]
) -> web.Response:
    """PUT: replace every writable field of the record named by the body's ``Id``."""
    config = state.config
    checked = check_record(
        body,
        businesses=config.businesses,
        strict_names=config.strict_names,
        with_id=True,
    )
    if checked.record is None or checked.record_id is None:
        return _rejected(state, checked.problems)

    row = state.store.replace(
        checked.record_id, checked.record, updated_by=principal.user.email
    )
    if row is None:
        return message_response(
            config.missing_record_status, f"{ENTITY} {checked.record_id} was not found."
        )
    state.stats.updates += 1

    return _written(f"{ENTITY} was successfully updated.", row, principal)


def delete(state: EmulatorState, principal: Principal, raw_id: str) -> web.Response:
    """DELETE /{id}."""
    record_id = _record_id(raw_id)
    if record_id is None:
        return not_found(raw_id)
    if not state.store.remove(record_id):
        return message_response(
            state.config.missing_record_status, f"{ENTITY} {record_id} was not found."
        )
    state.stats.deletes += 1

    return _written(f"{ENTITY} was successfully deleted.", {"Id": record_id}, principal)


def get_one(state: EmulatorState, raw_id: str) -> web.Response:
    """GET /{id}: every entity field, or 404."""
    record_id = _record_id(raw_id)
    row = None if record_id is None else state.store.get(record_id)
    if row is None:
        return not_found(raw_id)

    return json_response(row)


def _id_parameter(query: Mapping[str, str]) -> str | None:
    return next(
        (value for name, value in query.items() if name.casefold() == "id"), None
    )


def list_records(state: EmulatorState, query: Mapping[str, str]) -> web.Response:
    """GET on the collection: one page, or with ``id=[1,2,3]`` a JSON array of records."""
    config = state.config
    ids = _id_parameter(query)
    if ids is not None and ids.lstrip().startswith("["):
        try:
            wanted = parse_id_list(ids)
        except ValueError:
            return problems_response(
                [Problem("id", "must be integer Ids in square brackets", ids)]
            )
        found = (state.store.get(record_id) for record_id in dict.fromkeys(wanted))
        return json_response([row for row in found if row is not None])

    try:
        parsed = parse_list_query(
            query,
            dir_encoding=config.dir_encoding,
            max_page_size=config.max_page_size,
            strict_names=config.strict_names,
        )
    except QueryError as exc:
        return problems_response(exc.problems)
    rows = select(state.store, parsed, name_filter=config.name_filter)

    return json_response(page_body(rows, parsed, dir_encoding=config.dir_encoding))


def list_commands(state: EmulatorState, query: Mapping[str, str]) -> web.Response:
    """GET /commands, optionally narrowed to one record with ``id``."""
    raw_id = _id_parameter(query)
    if raw_id:
        record_id = _record_id(raw_id)
        if record_id is None:
            return problems_response([Problem("id", "must be an integer", raw_id)])
        if state.store.get(record_id) is None:
            return not_found(record_id)

    return json_response(describe_commands())


def run_command(
    state: EmulatorState, principal: Principal, body: Mapping[str, Any]
) -> web.Response:
    """POST /runcommand."""
    run = check_command(body, state.store, strict_names=state.config.strict_names)
    if isinstance(run, list):
        return _rejected(state, run)

    run.apply(state.store, updated_by=principal.user.email)
    state.stats.commands_run += 1
    result = envelope(
        status=200,
        message="The command was run correctly.",
        successful=True,
        updated_by=principal.user.email,
    )

    return json_response(result)
