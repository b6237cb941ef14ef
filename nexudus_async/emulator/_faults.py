"""Seeded, reproducible fault injection: which request gets which failure."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import attrs

__all__ = ["Fault", "FaultPlan", "FaultPlanner", "Faults", "parse_fault_spec"]

# Kinds that answer instead of the real handler, so nothing is stored.
_BEFORE: Final = frozenset(
    {"status", "html", "unsuccessful200", "reset_before_store", "throttle"}
)
# Kinds that let the handler act (and store) and then spoil the answer.
_AFTER: Final = frozenset({"empty200", "reset_after_store"})
_NO_ARGUMENT: Final = frozenset(
    {"empty200", "unsuccessful200", "reset_before_store", "reset_after_store", "ok"}
)
_DEFAULT_ARGUMENT: Final[Mapping[str, float]] = MappingProxyType(
    {"html": 503, "throttle": 1}
)
_KINDS: Final = _BEFORE | _AFTER | {"delay", "ok"}

Scope = Literal["all", "writes", "creates"]


@attrs.frozen
class Fault:
    """One parsed fault: a kind and its number (status code, seconds), if it takes one."""

    kind: str
    value: float | None = None

    def __str__(self) -> str:
        if self.value is None:
            return self.kind
        number = int(self.value) if self.value == int(self.value) else self.value
        return f"{self.kind}:{number}"


def _parse_one(text: str) -> Fault:
    kind, _, argument = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise ValueError(f"unknown fault kind {kind!r} in {text!r}")
    if kind in _NO_ARGUMENT:
        if argument:
            raise ValueError(f"fault {kind!r} takes no argument: {text!r}")
        return Fault(kind)
    if not argument:
        if kind not in _DEFAULT_ARGUMENT:
            raise ValueError(f"fault {kind!r} needs an argument, as in {kind}:N")
        return Fault(kind, _DEFAULT_ARGUMENT[kind])

    try:
        number = float(argument)
    except ValueError:
        raise ValueError(f"fault {kind!r} needs a number, not {argument!r}") from None
    if kind in ("status", "html"):
        low = 400 if kind == "status" else 200
        if number != int(number) or not low <= number <= 599:
            raise ValueError(
                f"fault {kind!r} needs a status code {low}-599, not {argument!r}"
            )
        return Fault(kind, int(number))
    if not number >= 0:
        raise ValueError(f"fault {kind!r} needs zero or more seconds, not {argument!r}")

    return Fault(kind, number)


def parse_fault_spec(text: str) -> tuple[Fault, ...]:
    """Parse a fault spec such as ``"status:503"`` or ``"delay:0.5+reset_after_store"``.

    Args:
        text: one or more faults joined with ``+``; each is ``kind`` or ``kind:number``.

    Returns:
        The faults, in the order given.

    Raises:
        ValueError: an unknown kind or a bad argument.
    """
    return tuple(_parse_one(part) for part in text.split("+"))


SpecList: TypeAlias = str | Sequence[str]


def _numbered(value: Mapping[int, str]) -> Mapping[int, str]:
    for number, spec in value.items():
        if type(number) is not int or number < 1:
            raise ValueError(f"fault request numbers start at 1, not {number!r}")
        parse_fault_spec(spec)
    return MappingProxyType(dict(value))


def _named(value: Mapping[str, SpecList]) -> Mapping[str, tuple[str, ...]]:
    frozen: dict[str, tuple[str, ...]] = {}
    for name, specs in value.items():
        listed = (specs,) if isinstance(specs, str) else tuple(specs)
        for spec in listed:
            parse_fault_spec(spec)
        frozen[name] = listed
    return MappingProxyType(frozen)


def _kinds(value: Sequence[str]) -> tuple[str, ...]:
    kinds = (value,) if isinstance(value, str) else tuple(value)
    for spec in kinds:
        parse_fault_spec(spec)
    if not kinds:
        raise ValueError("kinds must name at least one fault")
    return kinds


def _rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, not {value!r}")


@attrs.frozen(kw_only=True)
class Faults:
    """Which requests to the resource routes fail, and how.

    Requests are numbered from 1 in arrival order, counting only those that passed
    authentication and the throttle; ``by_request`` counts every resource request,
    ``by_write`` only POST, PUT and DELETE, ``by_create`` only creates. The faults listed
    for one number are combined on that request. ``by_name`` applies its list to the
    successive create or update requests whose body carries that ``Name``: the first such
    request gets the first entry, and so on (``"ok"`` skips one). All sources that match
    a request are combined. Delays add up; the first fault that answers wins.

    Args:
        by_request: request number -> fault spec.
        by_write: write number -> fault spec.
        by_create: create number -> fault spec.
        by_name: record Name -> fault specs for successive requests carrying it.
        rate: share of eligible requests (0 to 1) that get a random fault.
        kinds: the fault specs a random fault is drawn from, uniformly.
        scope: which requests are eligible for random faults: ``"all"``, ``"writes"``
            or ``"creates"``.
        seed: seed of the random draws; the same seed and request order give the same
            faults.
    """

    by_request: Mapping[int, str] = attrs.field(factory=dict, converter=_numbered)
    by_write: Mapping[int, str] = attrs.field(factory=dict, converter=_numbered)
    by_create: Mapping[int, str] = attrs.field(factory=dict, converter=_numbered)
    by_name: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_named)
    rate: float = attrs.field(default=0.0, validator=_rate)
    kinds: tuple[str, ...] = attrs.field(default=("status:503",), converter=_kinds)
    scope: Scope = attrs.field(
        default="all", validator=attrs.validators.in_(("all", "writes", "creates"))
    )
    seed: int = 0

    @property
    def active(self) -> bool:
        """Whether any fault can fire."""
        return bool(
            self.by_request
            or self.by_write
            or self.by_create
            or self.by_name
            or self.rate
        )


@attrs.frozen
class FaultPlan:
    """What to do to one request: wait ``delay`` seconds, then apply ``action`` if any."""

    delay: float
    action: Fault | None
    fired: tuple[Fault, ...]

    @property
    def answers_before_store(self) -> bool:
        """Whether the action replaces the handler, so nothing is stored."""
        return self.action is not None and self.action.kind in _BEFORE


class FaultPlanner:
    """Numbers the requests and turns a :class:`Faults` setting into per-request plans."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._active = faults.active
        self._by_request = {
            n: parse_fault_spec(s) for n, s in faults.by_request.items()
        }
        self._by_write = {n: parse_fault_spec(s) for n, s in faults.by_write.items()}
        self._by_create = {n: parse_fault_spec(s) for n, s in faults.by_create.items()}
        self._by_name = {
            name: tuple(parse_fault_spec(s) for s in specs)
            for name, specs in faults.by_name.items()
        }
        self._kinds = tuple(parse_fault_spec(s) for s in faults.kinds)
        self._random = random.Random(faults.seed)
        self._requests = 0
        self._writes = 0
        self._creates = 0
        self._name_uses: dict[str, int] = {}

    def plan(self, *, write: bool, create: bool, name: str | None) -> FaultPlan | None:
        """Number this request and say which faults it gets; ``None`` when none."""
        if not self._active:
            return None

        chosen: list[Fault] = []
        if name is not None and name in self._by_name:
            use = self._name_uses.get(name, 0)
            self._name_uses[name] = use + 1
            listed = self._by_name[name]
            if use < len(listed):
                chosen.extend(listed[use])
        self._requests += 1
        chosen.extend(self._by_request.get(self._requests, ()))
        if write:
            self._writes += 1
            chosen.extend(self._by_write.get(self._writes, ()))
        if create:
            self._creates += 1
            chosen.extend(self._by_create.get(self._creates, ()))
        if self._faults.rate and self._eligible(write=write, create=create):
            # Draw for every eligible request, hit or miss, so the sequence of draws
            # depends only on the seed and the order of requests.
            hit = self._random.random() < self._faults.rate
            if hit:
                chosen.extend(self._random.choice(self._kinds))

        fired = tuple(fault for fault in chosen if fault.kind != "ok")
        if not fired:
            return None
        delay = sum(fault.value or 0.0 for fault in fired if fault.kind == "delay")
        action = next((fault for fault in fired if fault.kind != "delay"), None)

        return FaultPlan(delay=delay, action=action, fired=fired)

    def _eligible(self, *, write: bool, create: bool) -> bool:
        scope = self._faults.scope
        return (
            scope == "all"
            or (scope == "writes" and write)
            or (scope == "creates" and create)
        )
