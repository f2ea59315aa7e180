"""How the container wires the Stalwart mail step: which settings its errors name, and its base domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.ports import StepResult, TenantSpec
from tenantry.provisioning.steps import Step
from tenantry.states import StepName
from tests.support.fake_stalwart import BASE, FakeStalwart

PASSWORD = "correct-horse-battery-staple"
API_KEY = "API_c29tZS1zdGFsd2FydC1rZXk"
UNAUTHORIZED = httpx.Response(
    401, json={"status": 401, "title": "Unauthorized", "detail": "You have to authenticate first."}
)


async def mail_provider_call(settings: Settings, fake: FakeStalwart, call: Callable[[Step], Any]) -> Any:
    container = build_container(settings, transports={"stalwart": httpx.MockTransport(fake)})
    try:
        (step,) = [s for s in container.steps if s.name == StepName.STALWART]
        return await call(step)
    finally:
        await container.aclose()


async def test_rejected_basic_credentials_name_the_username_and_password_settings(
    make_settings: Callable[..., Settings],
) -> None:
    fake = FakeStalwart()
    fake.fail_with = UNAUTHORIZED
    settings = make_settings(stalwart_url=BASE, stalwart_username="tenantry", stalwart_password=PASSWORD)
    with pytest.raises(PermanentStepError) as caught:
        await mail_provider_call(settings, fake, lambda step: step.ping())
    assert caught.value.reason == "AuthenticationFailed"
    assert "check TENANTRY_STALWART_USERNAME and TENANTRY_STALWART_PASSWORD" in caught.value.message
    assert "API_KEY" not in caught.value.message
    assert PASSWORD not in caught.value.message


async def test_rejected_api_key_names_the_api_key_setting_even_with_basic_credentials_set(
    make_settings: Callable[..., Settings],
) -> None:
    fake = FakeStalwart()
    fake.fail_with = UNAUTHORIZED
    settings = make_settings(
        stalwart_url=BASE, stalwart_api_key=API_KEY, stalwart_username="tenantry", stalwart_password=PASSWORD
    )
    with pytest.raises(PermanentStepError) as caught:
        await mail_provider_call(settings, fake, lambda step: step.ping())
    assert "check TENANTRY_STALWART_API_KEY" in caught.value.message
    assert API_KEY not in caught.value.message


async def test_the_mail_base_domain_setting_decides_which_domain_is_adopted_by_name(
    make_settings: Callable[..., Settings],
) -> None:
    fake = FakeStalwart()
    default_id = fake.add_domain("acme.mail.example.test")
    fake.add_domain("acme.other.example")
    settings = make_settings(stalwart_url=BASE, stalwart_api_key=API_KEY, mail_domain_base="mail.example.test")

    def tenant(domain: str) -> TenantSpec:
        return TenantSpec(id="t1", slug="acme", name="Acme", generation=1, mail_domain=domain, quota_bytes=1)

    adopted: StepResult = await mail_provider_call(
        settings, fake, lambda step: step.ensure(tenant("acme.mail.example.test"), {})
    )
    assert adopted.ids == {"domainId": default_id}
    with pytest.raises(PermanentStepError) as caught:
        await mail_provider_call(settings, fake, lambda step: step.ensure(tenant("acme.other.example"), {}))
    assert caught.value.reason == "DomainConflict"
