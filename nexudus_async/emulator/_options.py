"""The emulator's command-line options and the configuration they describe."""

from __future__ import annotations

import argparse

import attrs

from ._config import DEFAULT_BUSINESSES, READ_ROLES, EmulatorConfig, User
from ._faults import Faults, parse_fault_spec
from ._throttle import Limits

__all__ = ["add_emulator_arguments", "config_from_args"]

_LIMIT_NAMES = tuple(
    field.name for field in attrs.fields(Limits) if field.name != "tolerance"
)


def _fault_spec(text: str) -> str:
    try:
        parse_fault_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _numbered_fault(text: str) -> tuple[int, str]:
    number, equals, spec = text.partition("=")
    if not equals or not number.strip().isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(
            f"expected N=SPEC with N from 1, such as 3=status:503, not {text!r}"
        )
    return int(number), _fault_spec(spec)


def _named_fault(text: str) -> tuple[str, tuple[str, ...]]:
    name, equals, specs = text.rpartition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=SPEC[,SPEC...], not {text!r}")
    return name, tuple(_fault_spec(spec) for spec in specs.split(","))


def _limit_setting(text: str) -> tuple[str, int | None]:
    name, equals, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not equals or name not in _LIMIT_NAMES:
        raise argparse.ArgumentTypeError(
            f"expected NAME=N or NAME=off with NAME one of {', '.join(_LIMIT_NAMES)}"
        )
    if value.strip().lower() in ("off", "none"):
        return name, None
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"limit {name} needs a whole number or off, not {value!r}"
        ) from None


def _int_list(text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ids separated by commas, such as 1,2,3, not {text!r}"
        ) from None


def _spec_list(text: str) -> tuple[str, ...]:
    return tuple(_fault_spec(spec) for spec in text.split(","))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 to 65535, not {text!r}"
        )
    return port


def _page_size(text: str) -> int | None:
    return None if text.lower() in ("none", "off") else int(text)


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's command-line options to ``parser``.

    Args:
        parser: the parser (or sub-command parser) of the ``emulator`` command.
    """
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    serving.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="port; 0 picks a free one (default: %(default)s)",
    )

    logins = parser.add_argument_group("logins and data")
    logins.add_argument(
        "--user",
        default="admin@example.com",
        metavar="EMAIL",
        help="administrator login (default: %(default)s)",
    )
    logins.add_argument(
        "--password",
        default="password",
        help="administrator password (default: %(default)s)",
    )
    logins.add_argument(
        "--totp",
        metavar="CODE",
        help="turn on two-factor authentication; CODE is the accepted code",
    )
    logins.add_argument(
        "--reader-user",
        default="reader@example.com",
        metavar="EMAIL",
        help="login with only the List and Read roles (default: %(default)s)",
    )
    logins.add_argument(
        "--reader-password",
        default="password",
        metavar="PASSWORD",
        help="its password (default: %(default)s)",
    )
    logins.add_argument("--no-reader", action="store_true", help="no second login")
    logins.add_argument(
        "--businesses",
        type=_int_list,
        default=DEFAULT_BUSINESSES,
        metavar="IDS",
        help="business ids, comma-separated (default: 1,2,3,123)",
    )
    logins.add_argument(
        "--first-id",
        type=int,
        default=1,
        metavar="N",
        help="Id of the first record (default: %(default)s)",
    )
    logins.add_argument(
        "--token-lifetime",
        type=float,
        default=86400.0,
        metavar="SECONDS",
        help="access token lifetime (default: %(default)s)",
    )

    limits = parser.add_argument_group("throttling")
    limits.add_argument(
        "--limits",
        choices=("documented", "off"),
        default="documented",
        help="start from the documented limits or none (default: %(default)s)",
    )
    limits.add_argument(
        "--limit",
        type=_limit_setting,
        action="append",
        default=[],
        metavar="NAME=N|off",
        help=f"set one window; NAME is one of {', '.join(_LIMIT_NAMES)} (repeatable)",
    )
    limits.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="run the throttle clock X times faster; 60 makes a minute last a second",
    )
    limits.add_argument(
        "--throttle-status",
        type=int,
        choices=(409, 429),
        default=409,
        help="status of throttled answers (default: %(default)s)",
    )

    faults = parser.add_argument_group(
        "faults (SPEC: status:CODE, html[:CODE], empty200, unsuccessful200, delay:SECONDS, reset_before_store, reset_after_store, throttle[:SECONDS], ok; join with +)"
    )
    faults.add_argument(
        "--fault-request",
        type=_numbered_fault,
        action="append",
        default=[],
        metavar="N=SPEC",
        help="fault for the Nth resource request (repeatable)",
    )
    faults.add_argument(
        "--fault-write",
        type=_numbered_fault,
        action="append",
        default=[],
        metavar="N=SPEC",
        help="fault for the Nth write request (repeatable)",
    )
    faults.add_argument(
        "--fault-create",
        type=_numbered_fault,
        action="append",
        default=[],
        metavar="N=SPEC",
        help="fault for the Nth create request (repeatable)",
    )
    faults.add_argument(
        "--fault-name",
        type=_named_fault,
        action="append",
        default=[],
        metavar="NAME=SPEC[,SPEC]",
        help="faults for successive writes carrying this Name (repeatable)",
    )
    faults.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of requests given a random fault (default: 0)",
    )
    faults.add_argument(
        "--fault-kinds",
        type=_spec_list,
        default=("status:503",),
        metavar="SPEC[,SPEC]",
        help="random faults are drawn from these (default: status:503)",
    )
    faults.add_argument(
        "--fault-scope",
        choices=("all", "writes", "creates"),
        default="all",
        help="requests eligible for random faults (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random faults (default: %(default)s)",
    )

    switches = parser.add_argument_group("behaviour where the vendor docs are silent")
    switches.add_argument(
        "--dir-encoding",
        choices=("rest", "sdk"),
        default="rest",
        help="rest: dir=1 ascending, -1 descending; sdk: 0 ascending, 1 descending"
        " (default: %(default)s)",
    )
    switches.add_argument(
        "--name-filter",
        choices=("contains", "exact"),
        default="contains",
        help="how the Name filter matches (default: %(default)s)",
    )
    switches.add_argument(
        "--lenient-names",
        action="store_true",
        help="ignore unknown body fields and query parameters instead of answering 400",
    )
    switches.add_argument(
        "--missing-role-status",
        type=int,
        choices=(401, 403),
        default=401,
        help="status for a user without the role (default: %(default)s)",
    )
    switches.add_argument(
        "--validation-status",
        type=int,
        choices=(400, 200),
        default=400,
        help="status for validation failures (default: %(default)s)",
    )
    switches.add_argument(
        "--missing-record-status",
        type=int,
        choices=(404, 400, 500),
        default=404,
        help="status for PUT or DELETE of a missing Id (default: %(default)s)",
    )
    switches.add_argument(
        "--max-page-size",
        type=_page_size,
        default=1000,
        metavar="N|none",
        help="cap on size (default: %(default)s)",
    )
    switches.add_argument(
        "--timestamp-suffix",
        choices=("Z", "none"),
        default="Z",
        help="suffix of CreatedOn/UpdatedOn (default: %(default)s)",
    )
    switches.add_argument(
        "--client-id-from",
        choices=("both", "header", "form"),
        default="both",
        help="where the token endpoint reads client_id (default: %(default)s)",
    )
    switches.add_argument(
        "--refresh-without-client-id",
        action="store_true",
        help="let the refresh grant omit client_id",
    )


def config_from_args(ns: argparse.Namespace) -> EmulatorConfig:
    """Build the configuration from options added by :func:`add_emulator_arguments`.

    Raises:
        ValueError: a combination of values the configuration refuses.
    """
    users = [User(ns.user, ns.password, totp=ns.totp)]
    if not ns.no_reader:
        users.append(User(ns.reader_user, ns.reader_password, roles=READ_ROLES))
    limits = Limits.documented() if ns.limits == "documented" else Limits.off()
    if ns.limit:
        limits = attrs.evolve(limits, **dict(ns.limit))
    faults = Faults(
        by_request=dict(ns.fault_request),
        by_write=dict(ns.fault_write),
        by_create=dict(ns.fault_create),
        by_name=dict(ns.fault_name),
        rate=ns.fault_rate,
        kinds=ns.fault_kinds,
        scope=ns.fault_scope,
        seed=ns.fault_seed,
    )

    return EmulatorConfig(
        users=users,
        businesses=ns.businesses,
        limits=limits,
        time_scale=ns.time_scale,
        faults=faults,
        throttle_status=ns.throttle_status,
        token_lifetime=ns.token_lifetime,
        first_id=ns.first_id,
        dir_encoding=ns.dir_encoding,
        name_filter=ns.name_filter,
        strict_names=not ns.lenient_names,
        missing_role_status=ns.missing_role_status,
        validation_status=ns.validation_status,
        missing_record_status=ns.missing_record_status,
        max_page_size=ns.max_page_size,
        timestamp_suffix="" if ns.timestamp_suffix == "none" else "Z",
        client_id_from=ns.client_id_from,
        refresh_requires_client_id=not ns.refresh_without_client_id,
    )
