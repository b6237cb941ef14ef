"""Tests of the application gate over plain HTTP: token route, credentials, throttle, faults."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from nexudus_async.emulator import EmulatorConfig, Faults, Limits, User
from nexudus_async.emulator._app import MAX_BODY_BYTES

from .conftest import ADMIN, COLLECTION, READER, Api, basic

MakeApi = Callable[..., Awaitable[Api]]
BODY = {"BusinessId": 1, "Name": "a"}
FORM = "application/x-www-form-urlencoded"
PASSWORD_FORM = {"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]}
# Only the write window, a minute long, so a burst of writes meets exactly one limit.
WRITES_ONLY = Limits(
    per_100ms=None, per_minute=None, per_hour=None, per_day=None, writes_per_day=None
)


class TestTokenRoute:
    async def test_password_grant(self, api: Api) -> None:
        """A form-encoded password grant answers the token fields; the token works."""
        status, token = await api.token(PASSWORD_FORM)
        assert status == 200
        assert token["token_type"] == "bearer"
        assert isinstance(token["expires_in"], int)
        status, _ = await api.create(
            BODY, headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert status == 200
        assert api.emulator.stats.token_grants == 1

    async def test_json_body_is_unsupported(self, api: Api) -> None:
        """A JSON body answers 400 unsupported_grant_type."""
        status, answer, _ = await api.call(
            "POST", "/api/token", headers={}, json=PASSWORD_FORM
        )
        assert status == 400
        assert answer["error"] == "unsupported_grant_type"
        assert answer["error_description"]

    async def test_unknown_grant_type(self, api: Api) -> None:
        """A missing or unknown grant_type answers unsupported_grant_type."""
        for form in ({"username": "x"}, {"grant_type": "client_credentials"}):
            status, answer = await api.token(form)
            assert (status, answer["error"]) == (400, "unsupported_grant_type")

    async def test_wrong_password(self, api: Api) -> None:
        """Wrong credentials answer 400 invalid_grant."""
        status, answer = await api.token({**PASSWORD_FORM, "password": "nope"})
        assert status == 400
        assert answer == {
            "error": "invalid_grant",
            "error_description": "The user name or password is incorrect.",
        }

    async def test_totp(self, make_api: MakeApi) -> None:
        """A two-factor user needs totp in the form."""
        api = await make_api(users=[User("a@example.com", "pw", totp="424242")])
        form = {"grant_type": "password", "username": "a@example.com", "password": "pw"}
        assert (await api.token(form))[1]["error"] == "two_factor_auth_check"
        assert (await api.token({**form, "totp": "424242"}))[0] == 200

    async def test_refresh_rotation(self, api: Api) -> None:
        """The refresh grant rotates: a refresh token works once."""
        _, first = await api.token(PASSWORD_FORM, headers={"client_id": "app-1"})
        form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        status, second = await api.token(form, headers={"client_id": "app-1"})
        assert status == 200
        assert second["refresh_token"] != first["refresh_token"]
        status, answer = await api.token(form, headers={"client_id": "app-1"})
        assert (status, answer["error"]) == (400, "invalid_grant")

    async def test_client_id_as_form_field(self, api: Api) -> None:
        """client_id is read from the form as well as from the header."""
        _, first = await api.token({**PASSWORD_FORM, "client_id": "app-2"})
        form = {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "app-2",
        }
        assert (await api.token(form))[0] == 200

    async def test_client_id_source_switch(self, make_api: MakeApi) -> None:
        """With client_id_from header, a form client_id is ignored."""
        api = await make_api(client_id_from="header")
        _, first = await api.token({**PASSWORD_FORM, "client_id": "app-3"})
        form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        assert (await api.token(form, headers={"client_id": "app-3"}))[0] == 400
        assert (await api.token(form, headers={"client_id": ADMIN[0]}))[0] == 200

    async def test_expired_access_token(self, make_api: MakeApi) -> None:
        """An access token stops working after expires_in (a short lifetime here)."""
        api = await make_api(token_lifetime=0.2)
        _, token = await api.token(PASSWORD_FORM)
        assert token["expires_in"] == 1
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert (await api.get("", headers=headers))[0] == 200
        await asyncio.sleep(0.3)
        assert (await api.get("", headers=headers))[0] == 401

    async def test_get_is_not_allowed(self, api: Api) -> None:
        """The token endpoint accepts only POST."""
        status, _, response = await api.call("GET", "/api/token", headers={})
        assert status == 405
        assert response.headers["Allow"] == "POST"


class TestCredentials:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            basic("admin@example.com", "wrong"),
            {"Authorization": "Bearer made-up"},
            {"Authorization": "Token x"},
        ],
    )
    async def test_every_route_needs_credentials(
        self, api: Api, headers: dict[str, str]
    ) -> None:
        """Without valid Basic or Bearer credentials every route answers 401."""
        routes = [
            ("GET", COLLECTION),
            ("POST", COLLECTION),
            ("PUT", COLLECTION),
            ("GET", COLLECTION + "/1"),
            ("DELETE", COLLECTION + "/1"),
            ("GET", COLLECTION + "/commands"),
            ("POST", COLLECTION + "/runcommand"),
            ("GET", "/api/elsewhere"),
        ]
        for method, path in routes:
            status, answer, _ = await api.call(
                method,
                path,
                headers=headers,
                json=BODY if method in ("POST", "PUT") else None,
            )
            assert status == 401, (method, path)
            assert answer == {
                "Message": "Authorization has been denied for this request."
            }
        assert len(api.emulator.records) == 0

    async def test_basic_with_utf8_password(self, make_api: MakeApi) -> None:
        """Basic credentials are user:password in UTF-8."""
        api = await make_api(users=[User("zoë@example.com", "pässwörd")])
        assert (await api.create(BODY, headers=basic("zoë@example.com", "pässwörd")))[
            0
        ] == 200

    async def test_reader_cannot_create(self, api: Api) -> None:
        """The user without the create role gets 401 on create but may list and read."""
        status, _ = await api.create(BODY, headers=basic(*READER))
        assert status == 401
        assert len(api.emulator.records) == 0
        api.emulator.add_record(BODY)
        assert (await api.get("", headers=basic(*READER)))[0] == 200
        assert (await api.get("/1", headers=basic(*READER)))[0] == 200
        assert (await api.call("DELETE", COLLECTION + "/1", headers=basic(*READER)))[
            0
        ] == 401

    async def test_missing_role_can_answer_403(self, make_api: MakeApi) -> None:
        """missing_role_status switches the missing-role answer to 403."""
        api = await make_api(missing_role_status=403)
        assert (await api.create(BODY, headers=basic(*READER)))[0] == 403


class TestRouting:
    async def test_unknown_path(self, api: Api) -> None:
        """An authenticated request to a path the API lacks answers a JSON 404."""
        status, answer, _ = await api.call("GET", "/api/crm/nothing")
        assert status == 404
        assert answer["WasSuccessful"] is False

    async def test_wrong_method(self, api: Api) -> None:
        """A method a path does not take answers 405 with Allow."""
        status, _, response = await api.call("PATCH", COLLECTION, json=BODY)
        assert status == 405
        assert response.headers["Allow"] == "GET, POST, PUT"
        assert (await api.call("POST", COLLECTION + "/commands", json={}))[0] == 405


class TestBodySize:
    @pytest.mark.parametrize(
        ("path", "content_type"),
        [(COLLECTION, "application/json"), ("/api/token", FORM)],
    )
    async def test_too_large_answers_413_envelope(
        self, api: Api, path: str, content_type: str
    ) -> None:
        """A body over the limit answers 413 with the failed envelope, on any route."""
        status, answer, _ = await api.call(
            "POST",
            path,
            # A file-like body: aiohttp warns about raw bytes this large.
            data=io.BytesIO(b"x" * (MAX_BODY_BYTES + 1)),
            headers={**api.headers, "Content-Type": content_type},
        )
        assert status == 413
        assert answer["Status"] == 413
        assert answer["Message"] == (
            f"The request body is larger than {MAX_BODY_BYTES} bytes."
        )
        assert answer["WasSuccessful"] is False

    async def test_a_body_at_the_limit_is_read(self, api: Api) -> None:
        """A body of exactly the limit is decoded, so only larger ones are refused."""
        padding = "x" * (MAX_BODY_BYTES - len('{"BusinessId":1,"Name":""}'))
        body = f'{{"BusinessId":1,"Name":"{padding}"}}'.encode()
        assert len(body) == MAX_BODY_BYTES
        status, answer, _ = await api.call(
            "POST",
            COLLECTION,
            data=io.BytesIO(body),
            headers={**api.headers, "Content-Type": "application/json"},
        )
        assert status == 200, answer


class TestThrottling:
    async def test_61st_write_in_a_minute(self, make_api: MakeApi) -> None:
        """With the documented limits, the 61st write inside one scaled minute answers 409."""
        api = await make_api(
            EmulatorConfig(time_scale=60, limits=Limits(per_100ms=None))
        )
        statuses = [(await api.create({**BODY, "Name": f"n{i}"}))[0] for i in range(61)]
        assert statuses == [200] * 60 + [409]
        status, body, response = await api.call("POST", COLLECTION, json=BODY)
        assert status == 409
        assert body == b""
        assert int(response.headers["Retry-After"]) >= 1
        assert response.reason == "You must wait before accessing this url again."
        assert api.emulator.stats.throttled == 2
        assert api.emulator.stats.writes == 60

    async def test_window_reopens(self, make_api: MakeApi) -> None:
        """After the (scaled) window passes, writes are accepted again."""
        api = await make_api(EmulatorConfig(time_scale=120, limits=WRITES_ONLY))
        for i in range(60):
            await api.create({**BODY, "Name": f"n{i}"})
        assert (await api.create(BODY))[0] == 409
        await asyncio.sleep(0.5)
        assert (await api.create(BODY))[0] == 200

    async def test_429_switch(self, make_api: MakeApi) -> None:
        """throttle_status 429 answers throttled requests with 429."""
        api = await make_api(
            EmulatorConfig(
                time_scale=60,
                limits=Limits(writes_per_minute=1, per_100ms=None),
                throttle_status=429,
            )
        )
        await api.create(BODY)
        status, _, response = await api.call("POST", COLLECTION, json=BODY)
        assert status == 429
        assert "Retry-After" in response.headers

    async def test_burst_limit_applies_to_reads(self, make_api: MakeApi) -> None:
        """At real time, a second request within 100 ms is throttled, reads included."""
        api = await make_api(EmulatorConfig())
        assert (await api.get(""))[0] == 200
        status, _, response = await api.call("GET", COLLECTION)
        assert status == 409
        assert response.headers["Retry-After"] == "1"

    async def test_reads_do_not_use_the_write_budget(self, make_api: MakeApi) -> None:
        """GETs are not counted against the write windows."""
        api = await make_api(
            EmulatorConfig(limits=Limits(writes_per_minute=1, per_100ms=None))
        )
        for _ in range(5):
            assert (await api.get(""))[0] == 200
        assert (await api.create(BODY))[0] == 200

    async def test_clients_have_separate_budgets(self, make_api: MakeApi) -> None:
        """Each user (or client_id) is throttled on its own."""
        api = await make_api(
            EmulatorConfig(limits=Limits(per_minute=1, per_100ms=None))
        )
        assert (await api.get(""))[0] == 200
        assert (await api.get(""))[0] == 409
        assert (await api.get("", headers=basic(*READER)))[0] == 200
        _, token = await api.token({**PASSWORD_FORM, "client_id": "another-app"})
        assert (
            await api.get(
                "", headers={"Authorization": f"Bearer {token['access_token']}"}
            )
        )[0] == 200

    async def test_concurrent_writes_never_exceed_the_limit(
        self, make_api: MakeApi
    ) -> None:
        """Concurrent writes cannot both take the last free slot."""
        api = await make_api(
            EmulatorConfig(limits=Limits(writes_per_minute=10, per_100ms=None))
        )
        results = await asyncio.gather(
            *(api.create({**BODY, "Name": f"n{i}"}) for i in range(30))
        )
        assert sorted(status for status, _ in results) == [200] * 10 + [409] * 20
        assert len(api.emulator.records) == 10


class TestFaults:
    async def test_status(self, make_api: MakeApi) -> None:
        """status:503 answers 503 with a failed envelope and stores nothing."""
        api = await make_api(faults=Faults(by_create={1: "status:503"}))
        status, answer = await api.create(BODY)
        assert status == 503
        assert answer["WasSuccessful"] is False
        assert len(api.emulator.records) == 0
        assert (await api.create(BODY))[0] == 200
        assert api.emulator.stats.faults_fired == 1
        assert api.emulator.stats.fault_kinds == {"status": 1}

    async def test_html(self, make_api: MakeApi) -> None:
        """html answers an HTML page."""
        api = await make_api(faults=Faults(by_request={1: "html:502"}))
        status, body, response = await api.call("GET", COLLECTION)
        assert status == 502
        assert response.content_type == "text/html"
        assert b"<html>" in body

    async def test_empty_200_still_stores(self, make_api: MakeApi) -> None:
        """empty200 answers 200 with no body, after storing the record."""
        api = await make_api(faults=Faults(by_create={1: "empty200"}))
        status, body = await api.create(BODY)
        assert (status, body) == (200, b"")
        assert len(api.emulator.records) == 1

    async def test_unsuccessful_200(self, make_api: MakeApi) -> None:
        """unsuccessful200 answers 200 with WasSuccessful false and stores nothing."""
        api = await make_api(faults=Faults(by_create={1: "unsuccessful200"}))
        status, answer = await api.create(BODY)
        assert status == 200
        assert answer["WasSuccessful"] is False
        assert len(api.emulator.records) == 0

    async def test_delay(self, make_api: MakeApi) -> None:
        """delay holds the answer back, then answers normally."""
        api = await make_api(faults=Faults(by_request={1: "delay:0.3"}))
        started = time.monotonic()
        assert (await api.create(BODY))[0] == 200
        assert time.monotonic() - started >= 0.29

    async def test_reset_before_store(self, make_api: MakeApi) -> None:
        """reset_before_store drops the connection and stores nothing."""
        api = await make_api(faults=Faults(by_create={1: "reset_before_store"}))
        with pytest.raises(aiohttp.ClientError):
            await api.create(BODY)
        assert len(api.emulator.records) == 0

    async def test_reset_after_store(self, make_api: MakeApi) -> None:
        """reset_after_store drops the connection, but the record exists."""
        api = await make_api(faults=Faults(by_create={1: "reset_after_store"}))
        with pytest.raises(aiohttp.ClientError):
            await api.create({**BODY, "Name": "kept"})
        assert [r["Name"] for r in api.emulator.records.values()] == ["kept"]
        _, page = await api.get("", params={"CrmOpportunityImportFile_Name": "kept"})
        assert page["TotalItems"] == 1

    async def test_forced_throttle(self, make_api: MakeApi) -> None:
        """A throttle fault answers 409 with its Retry-After and does not use the budget."""
        api = await make_api(
            EmulatorConfig(
                limits=Limits(writes_per_minute=1, per_100ms=None),
                faults=Faults(by_create={1: "throttle:4"}),
            )
        )
        status, _, response = await api.call("POST", COLLECTION, json=BODY)
        assert (status, response.headers["Retry-After"]) == (409, "4")
        assert (await api.create(BODY))[0] == 200
        assert api.emulator.stats.throttled == 1

    async def test_by_name(self, make_api: MakeApi) -> None:
        """Faults keyed by Name hit successive requests carrying that Name."""
        api = await make_api(
            faults=Faults(
                by_name={"record-8": ["throttle", "throttle", "reset_after_store"]}
            )
        )
        assert (await api.create({**BODY, "Name": "record-7"}))[0] == 200
        assert (await api.create({**BODY, "Name": "record-8"}))[0] == 409
        assert (await api.create({**BODY, "Name": "record-8"}))[0] == 409
        with pytest.raises(aiohttp.ClientError):
            await api.create({**BODY, "Name": "record-8"})
        assert (await api.create({**BODY, "Name": "record-8"}))[0] == 200
        assert sorted(r["Name"] for r in api.emulator.records.values()) == [
            "record-7",
            "record-8",
            "record-8",
        ]

    async def test_random_faults_repeat_with_the_seed(self, make_api: MakeApi) -> None:
        """Two emulators with the same seed fail the same requests."""
        faults = Faults(
            rate=0.4, kinds=("status:500", "status:504", "unsuccessful200"), seed=7
        )
        runs = []
        for _ in range(2):
            api = await make_api(faults=faults)
            runs.append([(await api.create(BODY))[0] for _ in range(25)])
        assert runs[0] == runs[1]
        assert set(runs[0]) >= {200, 500}

    async def test_faults_skip_the_token_route(self, make_api: MakeApi) -> None:
        """Faults apply to resource routes, never to the token endpoint."""
        api = await make_api(faults=Faults(rate=1.0))
        assert (await api.token(PASSWORD_FORM))[0] == 200
        assert (await api.get(""))[0] == 503
