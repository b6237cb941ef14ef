"""Tests for the outcome vocabulary and the bulk report."""

from __future__ import annotations

import pickle
from types import MappingProxyType

import attrs
import pytest

from nexudus_async._models import FieldError
from nexudus_async._outcomes import BulkReport, Outcome, OutcomeKind


class TestOutcomeKind:
    def test_values_are_the_words_used_in_files(self) -> None:
        """Each kind's value and str() is the word of the results file."""
        assert [str(kind) for kind in OutcomeKind] == [
            "created",
            "rejected",
            "failed",
            "unknown",
            "skipped",
            "not_attempted",
        ]
        assert OutcomeKind("not_attempted") is OutcomeKind.NOT_ATTEMPTED
        assert OutcomeKind.CREATED == "created"


class TestOutcome:
    def test_frozen_with_defaults(self) -> None:
        """An outcome is immutable and needs only its kind and index."""
        outcome = Outcome(OutcomeKind.CREATED, 3, id=7)

        assert (outcome.line, outcome.errors, outcome.reconciled) == (None, (), False)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            outcome.id = 8  # type: ignore[misc]

    def test_repr_leaves_out_the_record(self) -> None:
        """The record (possibly large) is not part of the repr."""
        outcome = Outcome(OutcomeKind.REJECTED, 0, record={"Name": "secret-ish"})

        assert "secret-ish" not in repr(outcome)

    def test_pickles(self) -> None:
        """Outcomes cross process boundaries intact."""
        outcome = Outcome(
            OutcomeKind.REJECTED,
            1,
            line=2,
            record={"Name": ""},
            errors=(FieldError("Name", "is required", ""),),
            message="invalid",
        )

        assert pickle.loads(pickle.dumps(outcome)) == outcome


class TestBulkReport:
    def test_counts_by_kind_or_word(self) -> None:
        """A report is indexed by kind or by its word."""
        counts = dict.fromkeys(OutcomeKind, 0) | {OutcomeKind.CREATED: 4}
        report = BulkReport(
            counts=MappingProxyType(counts), outcomes=(), elapsed=1.5, total=4
        )

        assert report[OutcomeKind.CREATED] == 4
        assert report["created"] == 4
        assert report["unknown"] == 0
        with pytest.raises(ValueError, match="bogus"):
            report["bogus"]
