"""Tests of the emulator's command-line options."""

from __future__ import annotations

import argparse

import pytest

from nexudus_async.emulator import (
    READ_ROLES,
    EmulatorConfig,
    Faults,
    Limits,
    add_emulator_arguments,
    config_from_args,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emulator")
    add_emulator_arguments(parser)
    return parser.parse_args(list(argv))


class TestConfigFromArgs:
    def test_defaults_match_the_default_config(self) -> None:
        """With no options the configuration equals EmulatorConfig()."""
        ns = parse()
        assert config_from_args(ns) == EmulatorConfig()
        assert (ns.host, ns.port) == ("127.0.0.1", 8080)

    def test_login_options(self) -> None:
        """--user, --password and --totp set the administrator; --no-reader drops the reader."""
        config = config_from_args(
            parse(
                "--user",
                "a@example.com",
                "--password",
                "pw",
                "--totp",
                "111",
                "--no-reader",
            )
        )
        assert [(u.email, u.password, u.totp, u.roles) for u in config.users] == [
            ("a@example.com", "pw", "111", None)
        ]

    def test_reader_options(self) -> None:
        """The reader login can be renamed and keeps only the read roles."""
        config = config_from_args(
            parse("--reader-user", "r@example.com", "--reader-password", "rp")
        )
        reader = config.users[1]
        assert (reader.email, reader.password, reader.roles) == (
            "r@example.com",
            "rp",
            READ_ROLES,
        )

    def test_limits(self) -> None:
        """--limits off, --limit and --time-scale shape the throttle."""
        config = config_from_args(
            parse(
                "--limits",
                "off",
                "--limit",
                "writes_per_minute=5",
                "--time-scale",
                "60",
            )
        )
        assert config.limits == Limits(
            writes_per_minute=5,
            writes_per_day=None,
            per_100ms=None,
            per_minute=None,
            per_hour=None,
            per_day=None,
        )
        assert config.time_scale == 60
        config = config_from_args(
            parse("--limit", "per-100ms=off", "--throttle-status", "429")
        )
        assert config.limits.per_100ms is None
        assert config.throttle_status == 429

    def test_faults(self) -> None:
        """Every fault option lands in the Faults setting."""
        ns = parse(
            "--fault-request",
            "2=status:500",
            "--fault-write",
            "3=html",
            "--fault-create",
            "4=throttle",
            "--fault-create",
            "5=delay:0.5+reset_after_store",
            "--fault-name",
            "rec=a=throttle,ok,reset_after_store",
            "--fault-rate",
            "0.25",
            "--fault-kinds",
            "status:502,empty200",
            "--fault-scope",
            "creates",
            "--fault-seed",
            "9",
        )
        assert config_from_args(ns).faults == Faults(
            by_request={2: "status:500"},
            by_write={3: "html"},
            by_create={4: "throttle", 5: "delay:0.5+reset_after_store"},
            by_name={"rec=a": ("throttle", "ok", "reset_after_store")},
            rate=0.25,
            kinds=("status:502", "empty200"),
            scope="creates",
            seed=9,
        )

    def test_switches(self) -> None:
        """Each assumption switch has a flag."""
        config = config_from_args(
            parse(
                "--dir-encoding",
                "sdk",
                "--name-filter",
                "exact",
                "--lenient-names",
                "--missing-role-status",
                "403",
                "--validation-status",
                "200",
                "--missing-record-status",
                "500",
                "--max-page-size",
                "none",
                "--timestamp-suffix",
                "none",
                "--client-id-from",
                "header",
                "--refresh-without-client-id",
                "--businesses",
                "10,20",
                "--first-id",
                "1000",
                "--token-lifetime",
                "30",
            )
        )
        assert (config.dir_encoding, config.name_filter, config.strict_names) == (
            "sdk",
            "exact",
            False,
        )
        assert (
            config.missing_role_status,
            config.validation_status,
            config.missing_record_status,
        ) == (403, 200, 500)
        assert (
            config.max_page_size,
            config.timestamp_suffix,
            config.client_id_from,
        ) == (None, "", "header")
        assert config.refresh_requires_client_id is False
        assert (config.businesses, config.first_id, config.token_lifetime) == (
            frozenset({10, 20}),
            1000,
            30,
        )

    @pytest.mark.parametrize(
        "argv",
        [
            ["--fault-create", "0=status:500"],
            ["--fault-create", "x=status:500"],
            ["--fault-request", "1=explode"],
            ["--fault-name", "=html"],
            ["--limit", "per_week=5"],
            ["--limit", "per_minute=many"],
            ["--businesses", "a,b"],
            ["--port", "-5"],
            ["--port", "65536"],
            ["--port", "http"],
            ["--throttle-status", "503"],
        ],
    )
    def test_bad_options_are_argparse_errors(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad option values stop with a usage error."""
        with pytest.raises(SystemExit) as stopped:
            parse(*argv)
        assert stopped.value.code == 2
        assert "error" in capsys.readouterr().err

    def test_port_range_ends_are_accepted(self) -> None:
        """Ports 0 (a free one) and 65535 are both valid."""
        assert parse("--port", "0").port == 0
        assert parse("--port", "65535").port == 65535

    def test_help_shows_every_switch_default(self) -> None:
        """The help of --dir-encoding states its default, like the other switches."""
        parser = argparse.ArgumentParser(prog="emulator")
        add_emulator_arguments(parser)
        help_text = " ".join(parser.format_help().split())

        assert "1 descending (default: rest)" in help_text

    def test_refused_combination_is_a_value_error(self) -> None:
        """Values the configuration refuses raise ValueError."""
        with pytest.raises(ValueError, match="time_scale"):
            config_from_args(parse("--time-scale", "0"))
