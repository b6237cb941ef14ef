"""An asyncio client for the Nexudus REST API, with a quota-aware bulk creator."""

from __future__ import annotations

import logging as _logging

from ._auth import (
    BasicAuth,
    BearerAuth,
    FileTokenStore,
    PasswordAuth,
    TokenStore,
)
from ._bulk import (
    BulkJob,
    BulkOptions,
    bulk_create,
    create_all,
)
from ._client import (
    NexudusClient,
)
from ._errors import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    ConnectError,
    FieldProblem,
    HostNotFoundError,
    InputFileError,
    JournalError,
    NexudusError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    RecordValidationError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    TransportError,
    UnsuccessfulError,
    ValidationError,
    WireFormatError,
)
from ._io import (
    SourceRecord,
    open_records,
)
from ._journal import (
    Journal,
)
from ._limiter import (
    RateLimits,
    Window,
)
from ._models import (
    Command,
    CommandParameter,
    CommandParameterSpec,
    FieldError,
    ImportFile,
    ImportFileCreate,
    ImportFileUpdate,
    Page,
    SortDirection,
    Token,
    WriteResult,
)
from ._outcomes import (
    BulkReport,
    Outcome,
    OutcomeKind,
)
from ._progress import (
    Progress,
)
from ._resource import (
    ImportFiles,
)
from ._retry import (
    RetryPolicy,
)
from ._validate import (
    validate_create,
    validate_update,
)
from ._version import (
    __version__,
)

__all__ = [
    "APIStatusError",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "BasicAuth",
    "BearerAuth",
    "BulkJob",
    "BulkOptions",
    "BulkReport",
    "ClientStateError",
    "Command",
    "CommandParameter",
    "CommandParameterSpec",
    "ConflictError",
    "ConnectError",
    "FieldError",
    "FieldProblem",
    "FileTokenStore",
    "HostNotFoundError",
    "ImportFile",
    "ImportFileCreate",
    "ImportFileUpdate",
    "ImportFiles",
    "InputFileError",
    "Journal",
    "JournalError",
    "NexudusClient",
    "NexudusError",
    "NotFoundError",
    "Outcome",
    "OutcomeKind",
    "OutcomeUnknownError",
    "Page",
    "PasswordAuth",
    "PermissionDeniedError",
    "Progress",
    "ProtocolError",
    "QuotaExhaustedError",
    "RateLimits",
    "RecordValidationError",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "SortDirection",
    "SourceRecord",
    "ThrottledError",
    "Token",
    "TokenStore",
    "TransportError",
    "UnsuccessfulError",
    "ValidationError",
    "Window",
    "WireFormatError",
    "WriteResult",
    "__version__",
    "bulk_create",
    "create_all",
    "open_records",
    "validate_create",
    "validate_update",
]


# The library's records go wherever the application sends them; without this, a
# WARNING would reach stderr through logging's last-resort handler.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())


def _publish() -> None:
    # Tracebacks show the public path (nexudus_async.ThrottledError), not the private
    # module. Only exceptions: attrs models resolve their string annotations through
    # their module's globals, so their __module__ must stay where they were defined.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and issubclass(obj, Exception):
            obj.__module__ = __name__


_publish()
