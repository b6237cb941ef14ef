"""ClosesOnExit: `with` closes the object, however the block ends."""

from __future__ import annotations

import pytest

from nexudus_async._closing import ClosesOnExit


class _Thing(ClosesOnExit):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class TestClosesOnExit:
    def test_with_gives_the_object_and_closes_it(self) -> None:
        """The with-block gets the object itself and closes it once at the end."""
        thing = _Thing()
        with thing as same:
            assert same is thing
        assert thing.closed == 1

    def test_an_exception_still_closes_and_propagates(self) -> None:
        """An error in the block closes the object and is not swallowed."""
        thing = _Thing()
        with pytest.raises(RuntimeError, match="boom"), thing:
            raise RuntimeError("boom")
        assert thing.closed == 1
