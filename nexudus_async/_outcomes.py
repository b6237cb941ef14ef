"""What happened to each input record of a bulk job, and the summary of a whole job."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._models import FieldError

__all__ = ["BulkReport", "Outcome", "OutcomeKind"]


class OutcomeKind(str, enum.Enum):
    """The fate of one input record; the value is the word used in files and logs."""

    #: The server stored the record; the outcome carries its Id.
    CREATED = "created"
    #: The server (or local validation) refused the record's values.
    REJECTED = "rejected"
    #: The job gave up on the record: auth failure, a refusal that is not about the
    #: values, or a connection that could not be made.
    FAILED = "failed"
    #: The create may have reached the server and no answer came back, and a lookup
    #: could not settle it. It was not re-sent.
    UNKNOWN = "unknown"
    #: Nothing was sent: an earlier run created (or was refused) it, or the record
    #: already exists.
    SKIPPED = "skipped"
    #: The job stopped before reaching the record (quota, stop policy, cancellation).
    NOT_ATTEMPTED = "not_attempted"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Outcome:
    """The result for one input record.

    Attributes:
        kind: What happened.
        index: Position of the record in the input, counted from 0 (for records read
            from a file, the reader's own index).
        line: Line of the source file the record came from, when there is one.
        record: The input item exactly as it was given.
        id: The server's Id of the record: the new one for ``created``, the
            existing one for ``skipped`` when known.
        errors: Every field error: the server's for ``rejected``, or the local
            validation problems converted to the same shape; for a ``skipped``
            record an earlier run had rejected, that run's.
        message: Why, in words, for every kind but a plain ``created``.
        resume_at: For ``not_attempted`` after the quota ran out: when writes are
            allowed again (aware, UTC).
        reconciled: True when the Id was found by looking the record up after a
            create whose answer was lost.
    """

    kind: OutcomeKind
    index: int
    line: int | None = None
    record: Any = attrs.field(default=None, repr=False)
    id: int | None = None
    errors: tuple[FieldError, ...] = ()
    message: str | None = None
    resume_at: datetime | None = None
    reconciled: bool = False


@attrs.frozen
class BulkReport:
    """Summary of a finished bulk job.

    Attributes:
        counts: Number of records per outcome kind; every kind is present.
        outcomes: The outcomes other than ``created`` (all of them when created ones
            were asked for), in completion order or in input order when asked.
        elapsed: Seconds from the start of the job to its end.
        total: Number of input records, which is also the sum of ``counts``.
        stop_reason: Why the job stopped before its end, or None when it ran
            through.
        resume_at: When the quota allows writes again, if the job stopped on it.
    """

    counts: Mapping[OutcomeKind, int]
    outcomes: tuple[Outcome, ...]
    elapsed: float
    total: int
    stop_reason: str | None = None
    resume_at: datetime | None = None

    def __getitem__(self, kind: OutcomeKind | str) -> int:
        """Count of one kind, by enum member or by its word."""
        return self.counts[OutcomeKind(kind)]
