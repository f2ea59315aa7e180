"""Every adapter translates the same situation into the same step error: reason, retry or not, retry_after."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from tenantry.integrations.authentik import adapter as authentik
from tenantry.integrations.authentik.errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikForbiddenError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikResponseError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)
from tenantry.integrations.errors import (
    PermanentStepError,
    Reason,
    StepError,
    TransientStepError,
    translated,
)
from tenantry.integrations.oauth import OAuthRejectedError, OAuthTimeoutError, OAuthUnavailableError
from tenantry.integrations.ocis import adapter as ocis
from tenantry.integrations.ocis.errors import (
    OcisAuthError,
    OcisConflictError,
    OcisConnectionError,
    OcisForbiddenError,
    OcisInvalidRequestError,
    OcisNotFoundError,
    OcisNotSupportedError,
    OcisRateLimitError,
    OcisResponseError,
    OcisServerError,
    OcisTimeoutError,
)
from tenantry.integrations.stalwart import adapter as stalwart
from tenantry.integrations.stalwart.errors import (
    StalwartAuthError,
    StalwartConnectionError,
    StalwartMethodError,
    StalwartProtocolError,
    StalwartRateLimitError,
    StalwartRequestError,
    StalwartServerError,
    StalwartSetError,
    StalwartTimeoutError,
)

SETTING = "TENANTRY_UPSTREAM_CREDENTIALS"
Translate = Callable[[Any], StepError]
TRANSLATE: dict[str, Translate] = {
    "authentik": functools.partial(authentik.translate_error, credentials=SETTING),
    "stalwart": functools.partial(stalwart.translate_error, credentials=SETTING),
    "ocis": functools.partial(ocis.translate_error, credentials=SETTING),
}


def authentik_response(kind: type[AuthentikResponseError], status: int, **extra: Any) -> AuthentikResponseError:
    return kind(f"authentik answered {status} to GET /core/groups/", status=status, detail="said so", **extra)


def stalwart_set_error(type_: str, **extra: Any) -> StalwartSetError:
    return StalwartSetError(object_type="Domain", operation="create", key="new", type_=type_, **extra)


def stalwart_method_error(type_: str) -> StalwartMethodError:
    return StalwartMethodError(method="x:Domain/query", call_id="c0", type_=type_)


# What each situation must become, whichever upstream it comes from: (step error class, reason, retry_after).
EXPECTED: dict[str, tuple[type[StepError], str, float | None]] = {
    "credentials-refused": (PermanentStepError, "AuthenticationFailed", None),
    "permission-missing": (PermanentStepError, "Forbidden", None),
    "values-refused": (PermanentStepError, "ValidationFailed", None),
    "not-found": (PermanentStepError, "NotFound", None),
    "name-taken": (PermanentStepError, "NameConflict", None),
    "unsupported": (PermanentStepError, "UnsupportedUpstream", None),
    "unexpected": (PermanentStepError, "UnexpectedResponse", None),
    "rate-limited": (TransientStepError, "RateLimited", 7.0),
    "server-error": (TransientStepError, "UpstreamError", 7.0),
    "timeout": (TransientStepError, "UpstreamTimeout", None),
    "unreachable": (TransientStepError, "UpstreamUnreachable", None),
}
SHARED = set(EXPECTED) - {"name-taken", "unsupported"}

# (situation, upstream[-variant], client error)
CASES: list[tuple[str, str, Exception]] = [
    ("credentials-refused", "authentik", authentik_response(AuthentikAuthError, 403)),
    ("credentials-refused", "stalwart", StalwartAuthError(status=401, title="Unauthorized")),
    ("credentials-refused", "ocis", OcisAuthError("401", status=401)),
    ("credentials-refused", "ocis-token", OAuthRejectedError("invalid_client", status=401)),
    ("permission-missing", "authentik", authentik_response(AuthentikForbiddenError, 403)),
    ("permission-missing", "stalwart", stalwart_method_error("forbidden")),
    ("permission-missing", "stalwart-set", stalwart_set_error("forbidden")),
    ("permission-missing", "ocis", OcisForbiddenError("403", status=403)),
    ("values-refused", "authentik", authentik_response(AuthentikValidationError, 400, field_errors={"name": ["x"]})),
    ("values-refused", "stalwart", stalwart_set_error("invalidProperties", properties=("name",))),
    ("values-refused", "ocis", OcisInvalidRequestError("400", status=400)),
    ("not-found", "authentik", authentik_response(AuthentikNotFoundError, 404)),
    ("not-found", "stalwart", StalwartRequestError(status=404)),
    ("not-found", "stalwart-set", stalwart_set_error("notFound")),
    ("not-found", "ocis", OcisNotFoundError("404", status=404)),
    ("name-taken", "ocis", OcisConflictError("409", status=409)),
    ("unsupported", "stalwart", stalwart_method_error("unknownMethod")),
    ("unsupported", "ocis", OcisNotSupportedError("501", status=501)),
    ("unexpected", "authentik", authentik_response(AuthentikResponseError, 200)),
    ("unexpected", "stalwart", StalwartProtocolError("not JSON")),
    ("unexpected", "stalwart-request", StalwartRequestError(status=400)),
    ("unexpected", "stalwart-method", stalwart_method_error("invalidArguments")),
    ("unexpected", "ocis", OcisResponseError("200", status=200)),
    ("unexpected", "ocis-4xx", OcisResponseError("410", status=410)),
    ("rate-limited", "authentik", authentik_response(AuthentikRateLimitError, 429, retry_after=7.0)),
    ("rate-limited", "stalwart", StalwartRateLimitError(status=429, retry_after=7.0)),
    ("rate-limited", "ocis", OcisRateLimitError("429", status=429, retry_after=7.0)),
    ("rate-limited", "ocis-token", OAuthUnavailableError("429", status=429, retry_after=7.0)),
    ("server-error", "authentik", authentik_response(AuthentikServerError, 503, retry_after=7.0)),
    ("server-error", "stalwart", StalwartServerError(status=503, retry_after=7.0)),
    ("server-error", "ocis", OcisServerError("503", status=503, retry_after=7.0)),
    ("server-error", "ocis-token", OAuthUnavailableError("503", status=503, retry_after=7.0)),
    ("timeout", "authentik", AuthentikTimeoutError("slow", url="https://a.test")),
    ("timeout", "stalwart", StalwartTimeoutError("slow")),
    ("timeout", "ocis", OcisTimeoutError("slow")),
    ("timeout", "ocis-token", OAuthTimeoutError("slow")),
    ("unreachable", "authentik", AuthentikConnectionError("refused", url="https://a.test")),
    ("unreachable", "stalwart", StalwartConnectionError("refused")),
    ("unreachable", "ocis", OcisConnectionError("refused")),
    ("unreachable", "ocis-token", OAuthUnavailableError("refused")),
]


def translate(upstream: str, error: Exception) -> StepError:
    return TRANSLATE[upstream.partition("-")[0]](error)


@pytest.mark.parametrize(("situation", "upstream", "error"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_same_situation_is_the_same_step_error_on_every_upstream(
    situation: str, upstream: str, error: Exception
) -> None:
    step_error = translate(upstream, error)

    assert (type(step_error), step_error.reason, getattr(step_error, "retry_after", None)) == EXPECTED[situation]
    assert type(step_error.reason) is str


def test_a_stalwart_method_error_of_the_server_is_transient() -> None:
    step_error = translate("stalwart", stalwart_method_error("serverUnavailable"))

    assert (type(step_error), step_error.reason) == (TransientStepError, "UpstreamError")


def test_every_shared_situation_is_covered_for_every_upstream_with_a_shared_reason() -> None:
    covered = {(situation, upstream.partition("-")[0]) for situation, upstream, _ in CASES}

    assert {(situation, upstream) for situation in SHARED for upstream in TRANSLATE} <= covered
    assert {reason for _, reason, _ in EXPECTED.values()} <= {str(member) for member in Reason}


@pytest.mark.parametrize("upstream", ["authentik", "stalwart", "ocis", "ocis-token"])
def test_refused_credentials_name_the_setting_to_check(upstream: str) -> None:
    error = next(case[2] for case in CASES if case[:2] == ("credentials-refused", upstream))

    assert SETTING in translate(upstream, error).message


def test_translated_raises_the_step_error_chained_to_the_client_error() -> None:
    cause = OcisServerError("oCIS answered 503", status=503)

    with pytest.raises(TransientStepError) as caught, translated(OcisServerError, TRANSLATE["ocis"]):
        raise cause

    assert caught.value.__cause__ is cause


def test_translated_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), translated(OcisServerError, TRANSLATE["ocis"]):
        raise KeyError("not a client error")
