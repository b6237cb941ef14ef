"""Whether a call that must not be repeated has left the client: the client's word.

A bulk job cancelled midway must say, of each create it cut short, whether the
request may have reached the server (``unknown``: the next run looks it up before
sending it) or surely did not (``not_attempted``). Only the client can tell: a
create may wait inside it for the rate limiter, a token or a free connection, with
nothing sent.

A context variable carries the answer up without widening the signature of every
layer between the bulk creator and the client: a task that wants to know puts a
`SendState` in its context, and the client writes into it as the call moves on.
Without one (the default), nobody asked and the client writes nothing.

The caller may also withdraw what it has not sent yet: a bulk job that stops sets
``withdrawn`` on the states of its workers, and a create the client still holds
(queued behind the rate limiter, say) then ends in `CallWithdrawn` instead of
leaving. Without that, a job stopped by a refusal every create would meet would
send the creates already queued anyway, each to be refused in turn.

A state speaks for one call at a time. The calls a task makes follow one another,
but tasks started from it share its state; a caller running several creates at once
under one state could read one call's "waiting" over another's "sent".
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from typing import Final

__all__ = [
    "SENT",
    "UNTRACKED",
    "WAITING",
    "CallWithdrawn",
    "Phase",
    "SendState",
    "send_state",
]


class Phase(enum.Enum):
    """How far the latest call the client tracked under a `SendState` went."""

    #: No call has reported since the state was reset: nothing can be told.
    UNTRACKED = "untracked"
    #: The client holds the call and has sent nothing of it that the server may
    #: act on: it waits for the rate limiter, a token or a free connection of the
    #: pool, or retries an answer that means the server did not act.
    WAITING = "waiting"
    #: Handed to the transport: from here the request may reach the server.
    SENT = "sent"


# The members as module constants: the client reads them on every tracked call,
# and a global is cheaper to load than an enum member off its class.
UNTRACKED: Final = Phase.UNTRACKED
WAITING: Final = Phase.WAITING
SENT: Final = Phase.SENT


class CallWithdrawn(Exception):
    """The caller withdrew a tracked call the client had not sent: nothing left."""


class SendState:
    """Where the client is with a call; mutable, so the caller sees its writes.

    Slotted and bare on purpose: the client sets ``phase`` on a hot path, and a
    plain attribute store is the cheapest way to say something there.

    Attributes:
        phase: How far the latest tracked call went; the client writes it.
        withdrawn: Set by the caller: from now on the client sends nothing more
            under this state. A call it still holds raises `CallWithdrawn` at
            the point it would have been sent; one already sent goes on.
        in_call: Set by the caller while it awaits a tracked call, so that it
            can tell a ``phase`` of the call in hand from one left by the last.
    """

    __slots__ = ("in_call", "phase", "withdrawn")

    def __init__(self) -> None:
        self.phase: Phase = UNTRACKED
        self.withdrawn = False
        self.in_call = False

    def __repr__(self) -> str:
        withdrawn = ", withdrawn" if self.withdrawn else ""
        return f"SendState({self.phase.value}{withdrawn})"


#: The state the client writes into for calls made from this context. A context
#: variable set in a task is seen by everything that task awaits, and not by the
#: tasks beside it, so each bulk worker owns one for the record in its hands.
send_state: Final[ContextVar[SendState | None]] = ContextVar(
    "nexudus_async_send_state", default=None
)
