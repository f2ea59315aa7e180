"""The one builder of upstream HTTP clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.integrations.http import build_http_client


async def test_a_private_ca_bundle_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_http_client(ca_bundle=tmp_path / "missing.pem")


async def test_the_client_has_the_timeout_it_was_given() -> None:
    async with build_http_client(timeout=3.5) as client:
        assert client.timeout.read == 3.5
        assert client.timeout.connect == 3.5
