"""The CRM opportunity import files endpoints, as typed async methods."""

from __future__ import annotations

import builtins
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Final, Literal

import attrs

from . import _json
from ._constants import IMPORT_FILES_PATH
from ._convert import from_wire, page_from_wire, to_wire
from ._errors import NotFoundError
from ._models import (
    Command,
    CommandParameter,
    ImportFile,
    ImportFileCreate,
    ImportFileUpdate,
    Page,
    SortDirection,
    WriteResult,
)

__all__ = ["Call", "Expect", "ImportFiles", "Send"]

Expect = Literal["envelope", "json", "token"]

_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_WRITES: Final = frozenset({"POST", "PUT", "DELETE"})
_ENTITY: Final = "CrmOpportunityImportFile"
_JSON: Final = "application/json"
_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})
# The list endpoint reads range filters to the minute.
_FILTER_TIME: Final = "%Y-%m-%dT%H:%M"


# Not frozen, though nothing changes one once built: one is made per request, and a
# frozen class pays a call per field to get around its own guard.
@attrs.define
class Call:
    """One logical API call, sent once or more by the client.

    Attributes:
        method: HTTP method.
        path: Path below the base URL; never holds a query string.
        params: Query parameters.
        body: Encoded request body.
        content_type: Type of ``body``.
        headers: Extra request headers.
        authenticated: Whether to send the ``Authorization`` header.
        idempotent: Whether sending it twice is as good as once; by method.
        expect: What a 2xx answer holds: a write-result envelope (returned as a
            ``WriteResult``), any JSON, or a token (whose body must never be kept in
            an error).
    """

    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = _NO_HEADERS
    authenticated: bool = True
    idempotent: bool = attrs.field()
    expect: Expect = "json"

    @idempotent.default
    def _by_method(self) -> bool:
        return self.method in _IDEMPOTENT

    @property
    def write(self) -> bool:
        """Whether the call counts against the write limits."""
        return self.method in _WRITES and self.authenticated


#: Sends a call and returns its interpreted answer.
Send = Callable[[Call], Awaitable[Any]]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _minute(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime(_FILTER_TIME)


@attrs.frozen(kw_only=True)
class _Filters:
    name: str | None = None
    business_id: int | None = None
    imported: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None

    def params(self) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.name is not None:
            found[f"{_ENTITY}_Name"] = self.name
        if self.business_id is not None:
            found[f"{_ENTITY}_Business"] = str(self.business_id)
        if self.imported is not None:
            found[f"{_ENTITY}_Imported"] = _flag(self.imported)
        ranges = (
            ("from", "CreatedOn", self.created_from),
            ("to", "CreatedOn", self.created_to),
            ("from", "UpdatedOn", self.updated_from),
            ("to", "UpdatedOn", self.updated_to),
        )
        for bound, field, value in ranges:
            if value is not None:
                found[f"{bound}_{_ENTITY}_{field}"] = _minute(value)

        return found


def _listing(
    page: int, size: int, order_by: str, direction: SortDirection, filters: _Filters
) -> dict[str, str]:
    if page < 1 or size < 1:
        raise ValueError(f"page and size must be >= 1, got page={page}, size={size}")

    return {
        "page": str(page),
        "size": str(size),
        "orderBy": order_by,
        "dir": str(direction.value),
        **filters.params(),
    }


class ImportFiles:
    """CRM opportunity import files: records describing a file of opportunities.

    Reach it as ``client.import_files``. Every method may raise the errors
    ``NexudusClient`` documents; the ones particular to a method are listed on it.
    """

    def __init__(self, send: Send, path: str = IMPORT_FILES_PATH) -> None:
        self._send = send
        self._path = path

    def __repr__(self) -> str:
        return f"ImportFiles(path={self._path!r})"

    async def create(self, record: ImportFileCreate) -> WriteResult:
        """Create one import file.

        There is no idempotency key: a create is sent again only when the server
        surely did not act on it (a throttle, a 401 before processing, a connection
        that was never made), so it never makes a duplicate on its own.

        Args:
            record: The new record.

        Returns:
            The server's write result; ``result.id`` is the new record's id.

        Raises:
            ValidationError: 400 with field errors; nothing was created.
            BadRequestError: Another 400; nothing was created.
            UnsuccessfulError: 2xx saying ``WasSuccessful: false``; nothing was
                created. Carries the field errors.
            AuthError: The token endpoint refused the credentials; nothing was sent.
            AuthenticationError, PermissionDeniedError: 401 (after one token
                renewal) or 403; nothing was created.
            ThrottledError: Still throttled when the attempts ran out; nothing was
                created.
            ConnectError: No connection could be made (``sent`` is false);
                ``HostNotFoundError`` when the host name does not resolve.
            RequestTimeoutError: Timed out while connecting (``sent`` is false).
            QuotaExhaustedError: The client-side limits would hold the request
                longer than ``RateLimits.max_wait``; nothing was sent.
            ClientStateError: The client is not open; nothing was sent.
            OutcomeUnknownError: The request was sent and no answer came back
                (timeout, dropped connection, answer cut short). The record may
                exist: look it up before creating it again.
            ServerError: 5xx. Not retried; the record may exist.
            ProtocolError: The answer is not a write result (empty, HTML, not
                JSON). With a 2xx status the record probably exists.

            Any other ``APIStatusError`` (such as ``ConflictError``) means the server
            refused the record. If the calling task is cancelled while the request
            is in flight, the outcome is unknown too.
        """
        if not isinstance(record, ImportFileCreate):
            raise TypeError(f"expected ImportFileCreate, got {type(record).__name__}")
        result: WriteResult = await self._send(self._write("POST", self._path, record))

        return result

    async def get(self, id: int) -> ImportFile | None:
        """Fetch one import file by id.

        Args:
            id: The record's id.

        Returns:
            The record, or ``None`` when the server answers 404 for it (as the
            official SDK does). Other errors raise.
        """
        try:
            data = await self._send(Call("GET", f"{self._path}/{int(id)}"))
        except NotFoundError:
            return None

        return from_wire(ImportFile, data)

    async def get_many(self, ids: Iterable[int]) -> builtins.list[ImportFile]:
        """Fetch several import files by id in one request.

        Args:
            ids: The ids; none gives an empty list without a request.

        Returns:
            The records found, in the server's order; missing ids are left out.
        """
        wanted = [int(i) for i in ids]
        if not wanted:
            return []
        params = {"id": "[" + ",".join(map(str, wanted)) + "]"}
        data = await self._send(Call("GET", self._path, params=params))
        # The batch form answers with an array; accept a listing page as well.
        if isinstance(data, dict) and isinstance(data.get("Records"), builtins.list):
            data = data["Records"]

        return from_wire(builtins.list[ImportFile], data)

    async def list(
        self,
        *,
        page: int = 1,
        size: int = 25,
        order_by: str = "Id",
        direction: SortDirection = SortDirection.ASCENDING,
        name: str | None = None,
        business_id: int | None = None,
        imported: bool | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        updated_from: datetime | None = None,
        updated_to: datetime | None = None,
    ) -> Page[ImportFile]:
        """Fetch one page of import files.

        Args:
            page: Page number, from 1.
            size: Records per page.
            order_by: Field to sort by, by its wire name (``Id``, ``Name``...).
            direction: Sort direction.
            name: Only records with this name.
            business_id: Only records of this business (location).
            imported: Only records with this ``Imported`` flag.
            created_from: Only records created at or after this time.
            created_to: Only records created at or before this time.
            updated_from: Only records updated at or after this time.
            updated_to: Only records updated at or before this time.

        The server reads times to the minute; aware times are sent in UTC, naive
        ones as they are.

        Returns:
            The page, with the server's paging counters.

        Raises:
            ValueError: ``page`` or ``size`` below 1.
        """
        filters = _Filters(
            name=name,
            business_id=business_id,
            imported=imported,
            created_from=created_from,
            created_to=created_to,
            updated_from=updated_from,
            updated_to=updated_to,
        )
        return await self._page(_listing(page, size, order_by, direction, filters))

    async def iterate(
        self,
        *,
        size: int = 100,
        order_by: str = "Id",
        direction: SortDirection = SortDirection.ASCENDING,
        name: str | None = None,
        business_id: int | None = None,
        imported: bool | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        updated_from: datetime | None = None,
        updated_to: datetime | None = None,
    ) -> AsyncIterator[ImportFile]:
        """Yield every matching import file, page after page.

        Pages are fetched as the iteration needs them. It stops after a page that
        says there is no next page, or that holds no records. Records created or
        deleted meanwhile can shift the pages, so an item may be seen twice or
        missed; order by ``Id`` for the steadiest walk.

        Args:
            size: Records per page.
            order_by: As for ``list``.
            direction: As for ``list``.
            name: As for ``list``.
            business_id: As for ``list``.
            imported: As for ``list``.
            created_from: As for ``list``.
            created_to: As for ``list``.
            updated_from: As for ``list``.
            updated_to: As for ``list``.

        Yields:
            Each record.
        """
        filters = _Filters(
            name=name,
            business_id=business_id,
            imported=imported,
            created_from=created_from,
            created_to=created_to,
            updated_from=updated_from,
            updated_to=updated_to,
        )
        number = 1
        while True:
            page = await self._page(
                _listing(number, size, order_by, direction, filters)
            )
            for record in page.records:
                yield record
            if not page.has_next_page or not page.records:
                return
            number += 1

    async def update(self, record: ImportFileUpdate) -> WriteResult:
        """Replace an import file with ``record`` (a full PUT: every field is sent).

        Fields left as ``None`` are not sent, and the server may clear them; read
        the record first and send it back whole.

        Args:
            record: The record, identified by its ``id``.

        Returns:
            The server's write result.
        """
        if not isinstance(record, ImportFileUpdate):
            raise TypeError(f"expected ImportFileUpdate, got {type(record).__name__}")
        result: WriteResult = await self._send(self._write("PUT", self._path, record))

        return result

    async def delete(self, id: int) -> WriteResult:
        """Delete an import file.

        A delete is retried after a timeout or a dropped connection; if the first
        try had already deleted the record, the retry can meet ``NotFoundError``.

        Args:
            id: The record's id.

        Returns:
            The server's write result.
        """
        call = Call("DELETE", f"{self._path}/{int(id)}", expect="envelope")
        result: WriteResult = await self._send(call)

        return result

    async def commands(self, id: int | None = None) -> builtins.list[Command]:
        """List the commands that can run on import files.

        Args:
            id: Narrow the list to the commands available for this record.

        Returns:
            The commands.
        """
        params = None if id is None else {"id": str(int(id))}
        data = await self._send(Call("GET", f"{self._path}/commands", params=params))

        return from_wire(builtins.list[Command], data)

    async def run_command(
        self, key: str, ids: Sequence[int], parameters: Sequence[CommandParameter] = ()
    ) -> WriteResult:
        """Run a command on some import files.

        Like ``create``, a command is a POST: it is never sent twice unless the
        server surely did not act, and a lost answer raises ``OutcomeUnknownError``.

        Args:
            key: The command's key, from ``commands()``.
            ids: The records to run it on.
            parameters: Values for the parameters the command requires.

        Returns:
            The server's write result; some commands set ``redirect_url``.
        """
        body = {
            "Key": key,
            "Ids": [int(i) for i in ids],
            "Parameters": [to_wire(p) for p in parameters],
        }
        call = Call(
            "POST",
            f"{self._path}/runcommand",
            body=_json.dumps(body),
            content_type=_JSON,
            expect="envelope",
        )
        result: WriteResult = await self._send(call)

        return result

    async def _page(self, params: dict[str, str]) -> Page[ImportFile]:
        data = await self._send(Call("GET", self._path, params=params))

        return page_from_wire(ImportFile, data)

    @staticmethod
    def _write(method: str, path: str, record: Any) -> Call:
        return Call(
            method,
            path,
            body=_json.dumps(to_wire(record)),
            content_type=_JSON,
            expect="envelope",
        )
