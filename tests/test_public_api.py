"""The package's public surface: what `import nexudus_async` promises."""

from __future__ import annotations

import pickle

import nexudus_async

#: Changing this set is a decision about the public API: update it on purpose.
EXPECTED = {
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
}


class TestExports:
    def test_export_list_is_exactly_the_public_api(self) -> None:
        """__all__ names exactly the agreed public names, sorted, with no duplicates."""
        assert set(nexudus_async.__all__) == EXPECTED
        assert len(nexudus_async.__all__) == len(EXPECTED)
        assert list(nexudus_async.__all__) == sorted(
            nexudus_async.__all__, key=lambda n: (n.startswith("__"), n)
        ) or list(nexudus_async.__all__) == sorted(nexudus_async.__all__)

    def test_every_exported_name_resolves(self) -> None:
        """Each name in __all__ is an attribute of the package."""
        for name in nexudus_async.__all__:
            assert getattr(nexudus_async, name) is not None

    def test_no_private_module_leaks_as_a_public_name(self) -> None:
        """Public names never start with an underscore except the version."""
        public = [n for n in dir(nexudus_async) if not n.startswith(("_", "@"))]
        assert set(public) <= EXPECTED | {"annotations", "emulator"}

    def test_errors_show_the_public_module(self) -> None:
        """Exceptions report nexudus_async as their module, and still pickle."""
        assert nexudus_async.ThrottledError.__module__ == "nexudus_async"
        error = nexudus_async.ThrottledError(
            method="POST", path="/api/x", status=409, retry_after=2.0
        )
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is nexudus_async.ThrottledError
        assert copy.retry_after == 2.0
        assert str(copy) == str(error)
