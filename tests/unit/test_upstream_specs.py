"""The contract tests' upstream specs: skipped in a local clone without ../shared, a failure under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import openapi


@pytest.fixture
def no_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(openapi, "SHARED", tmp_path / "absent")


@pytest.mark.usefixtures("no_shared")
@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_a_missing_spec_skips_the_test_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)

    with pytest.raises(pytest.skip.Exception, match=r"absent/ocis/spec\.yaml is not available"):
        openapi.shared_file("ocis", "spec.yaml")


@pytest.mark.usefixtures("no_shared")
@pytest.mark.parametrize("ci", ["true", "True", "1"])
def test_a_missing_spec_fails_the_test_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)

    with pytest.raises(
        pytest.fail.Exception, match=r"is not available.*under CI \(CI=true\) the contract tests must run"
    ):
        openapi.shared_file("ocis", "spec.yaml")


def test_a_present_spec_is_returned_under_ci_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ocis").mkdir()
    (tmp_path / "ocis" / "spec.yaml").write_text("openapi: 3.0.0\n")
    monkeypatch.setattr(openapi, "SHARED", tmp_path)
    monkeypatch.setenv("CI", "true")

    assert openapi.shared_file("ocis", "spec.yaml") == tmp_path / "ocis" / "spec.yaml"
