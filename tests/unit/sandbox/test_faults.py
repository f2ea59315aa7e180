"""Fault rules, the request log and the HTTP control API of the sandbox middleware, driven in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tenantry.sandbox import faults, latency
from tenantry.sandbox.faults import DroppedConnectionError, FaultRule, Receive, SandboxControls, Scope, Send

PATH = "/api/things"


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the body it was given, so a test can see what reached the app."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    data = json.dumps({"path": scope["path"], "received": b"".join(chunks).decode()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


@pytest.fixture
def controls() -> SandboxControls:
    return SandboxControls(echo_app, name="test")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Delays the middleware asked for, recorded instead of slept (no timing in assertions)."""
    asked: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(faults, "asyncio", SimpleNamespace(sleep=fake_sleep))
    monkeypatch.setattr(latency, "asyncio", SimpleNamespace(sleep=fake_sleep))
    return asked


@pytest.fixture
async def client(controls: SandboxControls) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(controls), base_url="http://sandbox.test") as c:
        yield c


def _secret_free(value: Any, *secrets: str) -> bool:
    text = json.dumps(value)
    return not any(s in text for s in secrets)


# -- rule selection (Python API) ----------------------------------------------------------------------------
async def test_status_rule_after_a_latency_rule_still_applies_together_with_the_latency(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=250))
    controls.fail(PATH, 503, retry_after=4)

    response = await client.get(PATH)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "4"
    assert sleeps == [0.25]


async def test_timeout_and_drop_rules_after_a_latency_rule_still_apply(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=100))
    controls.add_fault(FaultRule(kind="timeout", path=PATH, method="GET", hang_seconds=7, times=1))
    controls.add_fault(FaultRule(kind="drop", path=PATH, method="POST", times=1))

    hung = await client.get(PATH)  # in-process the hang is the recorded sleep, then the app answers
    with pytest.raises(DroppedConnectionError):
        await client.post(PATH, json={})

    assert hung.status_code == 200
    assert sleeps == [0.1, 7, 0.1]


async def test_first_matching_non_latency_rule_wins(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=10))
    controls.fail(PATH, 429, times=1)
    controls.fail(PATH, 500)

    statuses = [(await client.get(PATH)).status_code for _ in range(2)]

    assert statuses == [429, 500]


async def test_a_rule_with_a_probability_answers_that_share_of_requests_the_same_for_the_same_seed(
    controls: SandboxControls, client: httpx.AsyncClient
) -> None:
    rule = controls.fail(PATH, 503)
    rule.probability = 0.25
    rule.times = 1000  # counts down only for the requests it answers

    runs = []
    for _ in range(2):
        controls.rng.seed(7)
        controls.clear_log()
        statuses = [(await client.get(PATH)).status_code for _ in range(400)]
        runs.append(statuses)

    assert runs[0] == runs[1]
    failed = runs[0].count(503)
    assert 60 <= failed <= 140, failed  # 100 expected; outside this range for a broken draw, not by chance
    assert set(runs[0]) == {200, 503}
    assert rule.times == 1000 - 2 * failed
    assert [r.fault for r in controls.requests()] == [("status" if s == 503 else None) for s in runs[1]]


async def test_the_log_names_the_kind_of_fault_that_answered_each_request(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=10))
    controls.add_fault(FaultRule(kind="timeout", path=PATH, method="GET", hang_seconds=3, times=1))
    controls.add_fault(FaultRule(kind="drop", path=PATH, method="POST", times=1))

    hung, plain = await client.get(PATH), await client.get(PATH)
    with pytest.raises(DroppedConnectionError):
        await client.post(PATH, json={})

    assert (hung.status_code, plain.status_code) == (200, 200)
    assert [(r.method, r.fault) for r in controls.requests()] == [("GET", "timeout"), ("GET", None), ("POST", "drop")]


async def test_latency_rules_add_to_the_global_latency_and_skip_other_paths(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.set_latency(20)
    controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=30))
    controls.add_fault(FaultRule(kind="latency", path=PATH, method="GET", latency_ms=50))

    await client.get(PATH)
    await client.post(PATH, json={})
    await client.get("/elsewhere")

    assert sleeps == pytest.approx([0.1, 0.05, 0.02])


async def test_latency_rule_counts_down_its_times_and_then_stops_applying(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    rule = controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=40, times=2))

    statuses = [(await client.get(PATH)).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert sleeps == [0.04, 0.04]
    assert rule.times == 0


async def test_status_and_latency_rules_each_count_down_only_when_they_apply(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    delay = controls.add_fault(FaultRule(kind="latency", path=PATH, latency_ms=10, times=3))
    failure = controls.fail(PATH, 503, method="POST", times=1)

    statuses = [
        (await client.get(PATH)).status_code,
        (await client.post(PATH, json={})).status_code,
        (await client.post(PATH, json={})).status_code,
    ]

    assert statuses == [200, 503, 200]
    assert (delay.times, failure.times) == (0, 0)
    assert [r.status for r in controls.requests()] == [200, 503, 200]


# -- validation (Python API) ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        (FaultRule(kind="bogus"), "kind"),  # type: ignore[arg-type]
        (FaultRule(kind="status", path="(unclosed"), "regex"),
        (FaultRule(kind="status", method="GE T"), "method"),
        (FaultRule(kind="status", status=42), "status"),
        (FaultRule(kind="status", times=-1), "times"),
        (FaultRule(kind="latency", latency_ms=-5), "latency_ms"),
        (FaultRule(kind="timeout", hang_seconds=float("nan")), "hang_seconds"),
        (FaultRule(kind="status", probability=1.5), "probability"),
        (FaultRule(kind="status", probability=-0.1), "probability"),
    ],
)
async def test_add_fault_rejects_an_invalid_rule_and_later_requests_reach_the_app(
    controls: SandboxControls, client: httpx.AsyncClient, rule: FaultRule, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        controls.add_fault(rule)

    response = await client.get(PATH)

    assert controls.faults() == []
    assert response.status_code == 200


def test_set_latency_rejects_a_negative_delay(controls: SandboxControls) -> None:
    with pytest.raises(ValueError, match="ms"):
        controls.set_latency(-1)
    assert controls.latency_ms == 0


# -- HTTP control API ---------------------------------------------------------------------------------------
async def test_http_faults_endpoint_adds_rules_that_apply_and_lists_them_counted_down(
    client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    added = [
        await client.post("/_sandbox/faults", json={"kind": "latency", "path": PATH, "latency_ms": 30, "times": 2}),
        await client.post(
            "/_sandbox/faults", json={"kind": "status", "path": PATH, "status": 429, "retry_after": 2, "times": 1}
        ),
    ]

    first, second = await client.get(PATH), await client.get(PATH)
    listed = (await client.get("/_sandbox/faults")).json()

    assert [r.status_code for r in added] == [200, 200]
    assert added[1].json()["status"] == 429
    assert (first.status_code, first.headers["retry-after"], second.status_code) == (429, "2", 200)
    assert sleeps == [0.03, 0.03]
    assert [(r["kind"], r["times"]) for r in listed] == [("latency", 0), ("status", 0)]


async def test_http_faults_delete_clears_rules_and_latency(
    controls: SandboxControls, client: httpx.AsyncClient, sleeps: list[float]
) -> None:
    controls.fail(PATH, 500)
    controls.set_latency(5)

    cleared = await client.delete("/_sandbox/faults")
    response = await client.get(PATH)

    assert cleared.status_code == 200
    assert response.status_code == 200
    assert sleeps == []
    assert (await client.get("/_sandbox/faults")).json() == []


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"kind": "bogus", "path": PATH}, "kind"),
        ({"kind": "status", "path": "([a-z"}, "regex"),
        ({"kind": "status", "method": "G/ET"}, "method"),
        ({"kind": "status", "status": "503"}, "status"),
        ({"kind": "status", "times": "once"}, "times"),
        ({"kind": "latency", "latency_ms": "slow"}, "latency_ms"),
        ({"kind": "status", "colour": "red"}, "colour"),
        ({"path": PATH}, "kind"),
        ([{"kind": "status"}], "JSON object"),
    ],
)
async def test_http_faults_endpoint_answers_400_for_an_invalid_rule_and_keeps_serving(
    client: httpx.AsyncClient, payload: Any, complaint: str
) -> None:
    rejected = await client.post("/_sandbox/faults", json=payload)
    listed = await client.get("/_sandbox/faults")
    response = await client.get(PATH)

    assert rejected.status_code == 400
    assert complaint in rejected.json()["detail"]
    assert listed.json() == []
    assert response.status_code == 200


async def test_http_faults_endpoint_answers_400_for_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    rejected = await client.post("/_sandbox/faults", content=b"kind=status", headers={"content-type": "text/plain"})
    assert rejected.status_code == 400
    assert "detail" in rejected.json()


async def test_http_latency_endpoint_sets_the_global_latency(client: httpx.AsyncClient, sleeps: list[float]) -> None:
    answer = await client.post("/_sandbox/latency", json={"ms": 20})
    await client.get(PATH)

    assert (answer.status_code, answer.json()) == (200, {"ms": 20.0})
    assert sleeps == [0.02]


@pytest.mark.parametrize("payload", [{"ms": -1}, {"ms": "fast"}, {"ms": True}, {"ms": None}, [20]])
async def test_http_latency_endpoint_answers_400_for_an_invalid_value_and_keeps_the_old_one(
    controls: SandboxControls, client: httpx.AsyncClient, payload: Any
) -> None:
    controls.set_latency(15)

    rejected = await client.post("/_sandbox/latency", json=payload)

    assert rejected.status_code == 400
    assert "ms" in rejected.json()["detail"]
    assert controls.latency_ms == 15


async def test_unknown_control_answers_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/_sandbox/nothing")
    assert response.status_code == 404
    assert "nothing" in response.json()["detail"]


async def test_http_requests_endpoint_lists_the_log_redacted_and_delete_clears_it(client: httpx.AsyncClient) -> None:
    await client.post(
        PATH, json={"name": "acme", "password": "hunter2-json"}, headers={"Authorization": "Bearer tok-in-header"}
    )
    await client.post(PATH, data={"grant_type": "client_credentials", "client_secret": "form-secret-1"})

    listed = (await client.get("/_sandbox/requests")).json()
    cleared = await client.delete("/_sandbox/requests")
    after = (await client.get("/_sandbox/requests")).json()

    assert [(r["method"], r["path"], r["status"]) for r in listed] == [("POST", PATH, 200), ("POST", PATH, 200)]
    assert listed[0]["body"] == {"name": "acme", "password": "<redacted>"}
    assert listed[0]["headers"]["authorization"] == "<redacted>"
    assert listed[1]["body"] == {"grant_type": "client_credentials", "client_secret": "<redacted>"}
    assert _secret_free(listed, "hunter2-json", "tok-in-header", "form-secret-1")
    assert cleared.status_code == 200
    assert after == []


# -- redaction of bodies ----------------------------------------------------------------------------------
async def test_form_body_is_logged_as_a_dict_with_secrets_redacted_while_the_app_gets_it_intact(
    controls: SandboxControls, client: httpx.AsyncClient
) -> None:
    form = {
        "grant_type": "authorization_code",
        "client_id": "portal",
        "client_secret": "cs-1",
        "code": "ac-2",
        "code_verifier": "cv-3",
        "redirect_uri": "https://portal.test/cb",
        "refresh_token": "rt-4",
        "device_code": "dc-5",
        "token": "tk-6",
        "password": "pw-7",
        "username": "alice",
    }

    response = await client.post(PATH, data=form)

    [logged] = controls.requests("POST", PATH)
    secret_keys = {"client_secret", "code", "code_verifier", "refresh_token", "device_code", "token", "password"}
    assert logged.body == {k: ("<redacted>" if k in secret_keys else v) for k, v in form.items()}
    assert _secret_free(asdict(logged), "cs-1", "ac-2", "cv-3", "rt-4", "dc-5", "tk-6", "pw-7")
    assert "client_secret=cs-1" in response.json()["received"]


async def test_form_body_with_repeated_keys_keeps_every_value(
    controls: SandboxControls, client: httpx.AsyncClient
) -> None:
    await client.post(
        PATH,
        content=b"scope=openid&scope=email&access_token=at-1&empty=",
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )

    [logged] = controls.requests("POST", PATH)
    assert logged.body == {"scope": ["openid", "email"], "access_token": "<redacted>", "empty": ""}


async def test_nested_json_secrets_are_redacted_at_every_depth_and_other_values_kept(
    controls: SandboxControls, client: httpx.AsyncClient
) -> None:
    credential = {"@type": "Password", "secret": "pw-deep"}
    body = {
        "using": ["urn:stalwart:jmap"],
        "clientSecret": "cs-camel",
        "methodCalls": [["x:Account/set", {"create": {"n1": {"name": "bob", "credentials": {"0": credential}}}}, "c0"]],
        "session": {"Access-Token": "at-dash", "refresh_token": {"value": "rt-object"}},
    }

    response = await client.post(PATH, json=body)

    [logged] = controls.requests("POST", PATH)
    assert logged.body == {
        "using": ["urn:stalwart:jmap"],
        "clientSecret": "<redacted>",
        "methodCalls": [
            [
                "x:Account/set",
                {
                    "create": {
                        "n1": {"name": "bob", "credentials": {"0": {"@type": "Password", "secret": "<redacted>"}}}
                    }
                },
                "c0",
            ]
        ],
        "session": {"Access-Token": "<redacted>", "refresh_token": "<redacted>"},
    }
    assert _secret_free(asdict(logged), "pw-deep", "cs-camel", "at-dash", "rt-object")
    assert "pw-deep" in response.json()["received"]


async def test_body_that_is_neither_json_nor_a_form_is_logged_as_text(
    controls: SandboxControls, client: httpx.AsyncClient
) -> None:
    await client.put(PATH, content=b"plain words", headers={"content-type": "text/plain"})

    [logged] = controls.requests("PUT")
    assert logged.body == "plain words"


async def test_secret_query_parameters_are_redacted_in_the_log() -> None:
    controls = SandboxControls(echo_app, name="test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=controls), base_url="http://sandbox.test") as client:
        await client.get("/callback", params={"code": "abc123secret", "state": "xyz"})
    logged = controls.requests()[-1]
    assert "abc123secret" not in logged.query
    assert "state=xyz" in logged.query
