"""The portal in a real headless Chromium: sign in, create a workspace and watch it come up, and its safety."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE, LiveStack, chromium_path, live_stack, shot, sign_in

pytestmark = pytest.mark.slow

STEP_NAMES = ("authentik", "stalwart", "ocis")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    chromium_path()
    with live_stack(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(stack: LiveStack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: LiveStack) -> Iterator[Any]:
    """A fresh browser profile (no cookies) whose page fails the test on any script dialog."""
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], f"a script ran and opened a dialog: {dialogs}"


def step_state(page: Any, step: str) -> str:
    return str(page.locator(f'#ws-steps [data-step="{step}"]').get_attribute("data-state"))


def create_workspace(page: Any, name: str, slug: str = "", *, screenshot: str | None = None) -> None:
    page.goto("/new")
    page.get_by_label("Name", exact=True).fill(name)
    if slug:
        page.get_by_label("Short name (slug)").fill(slug)
    if screenshot:
        page.wait_for_timeout(400)  # the checks as you type have answered
        shot(page, screenshot)
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(re.compile(r".*/workspaces/[a-z0-9-]+\?notice=created$"))


def test_a_person_signs_in_creates_a_workspace_and_watches_every_step_reach_ok_without_a_reload(
    page: Any, stack: LiveStack
) -> None:
    sign_in(page, stack, "bob", screenshot="01-sign-in")
    page.wait_for_url(stack.url + "/")
    shot(page, "02-my-workspaces-empty")
    stack.slow_files(3500)  # the files step is still working when the page first shows
    try:
        create_workspace(page, "Acme Corporation", screenshot="03-new-workspace")
        assert page.locator("h1").inner_text() == "Acme Corporation"
        page.evaluate("window.__sameDocument = true")
        assert step_state(page, "ocis") != "ok"
        shot(page, "04-workspace-setting-up", full_page=False)
        for step in STEP_NAMES:
            page.wait_for_selector(f'#ws-steps [data-step="{step}"][data-state="ok"]', timeout=20_000)
    finally:
        stack.suite.ocis.controls.clear_faults()
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    page.wait_for_selector("#ws-status .status.ok")
    assert page.locator("#ws-status").inner_text() == "Active"
    shot(page, "05-workspace-active", full_page=False)
    page.goto("/")
    assert "Acme Corporation" in page.locator(".tenants").inner_text()
    shot(page, "06-my-workspaces")


def test_the_new_workspace_form_suggests_the_slug_and_checks_each_field_as_you_type(
    page: Any, stack: LiveStack
) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Taken Slug", "taken-slug")  # this test's own: it passes in any order
    page.goto("/new")
    page.get_by_label("Name", exact=True).fill("Café Übersee")
    assert page.get_by_label("Short name (slug)").input_value() == "cafe-ubersee"
    page.get_by_label("Short name (slug)").fill("taken-slug")
    expect(page.locator("#slug-problem")).to_contain_text("already taken")
    assert page.get_by_label("Short name (slug)").get_attribute("aria-invalid") == "true"
    page.get_by_label("Mail domain").fill("someone.demo.example.test")
    expect(page.locator("#mailDomain-problem")).to_contain_text("namespace")
    shot(page, "03b-new-workspace-problems")
    page.get_by_role("button", name="Create workspace").click()
    assert page.locator("#slug-problem").inner_text().lower().startswith("a tenant with slug")
    assert page.url.endswith("/new")


def test_the_dns_records_are_shown_and_a_copy_button_copies_one(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Copy Test", "copy-test")
    page.wait_for_selector("#ws-dns .record button.copy:not([hidden])", timeout=20_000)
    records = page.locator("#ws-dns .record")
    assert records.count() >= 3
    text = page.locator("#ws-dns .record .value").first.inner_text()
    page.locator("#ws-dns .record button.copy").first.click()
    expect(page.locator("#ws-dns button.copy.done")).to_have_count(1)
    assert page.evaluate("navigator.clipboard.readText()") == text
    zone = page.request.get(page.locator("#ws-dns a[download]").get_attribute("href"))
    assert zone.status == 200
    assert "_domainkey" in zone.text()


def test_a_failing_mail_step_shows_its_error_and_next_retry_and_reconcile_brings_it_to_ok(
    page: Any, stack: LiveStack
) -> None:
    sign_in(page, stack, "bob")
    stack.fail_mail()
    try:
        create_workspace(page, "Mail Outage", "mail-outage")
        page.wait_for_selector('#ws-steps [data-step="stalwart"][data-state="failing"]', timeout=20_000)
        mail = page.locator('#ws-steps [data-step="stalwart"]')
        assert "Failing, retrying by itself" in mail.inner_text()
        assert "503" in mail.locator(".step-message").inner_text()
        assert re.search(r"Next retry\s+in \d+ s", mail.inner_text()), mail.inner_text()
        shot(page, "07-workspace-mail-failing", full_page=False)
        page.goto("/")
        assert "Mail: failing, retrying by itself" in page.locator(".tenants").inner_text()
        page.go_back()
    finally:
        stack.heal_mail()
    page.get_by_role("button", name="Reconcile now").click()
    page.wait_for_selector('#ws-steps [data-step="stalwart"][data-state="ok"]', timeout=20_000)
    assert page.locator(".notice").inner_text().startswith("Reconcile started")


def test_an_ordinary_user_gets_404_on_another_persons_workspace(browser: Any, page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "alice")
    create_workspace(page, "Alice Only", "alice-only")
    other = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    try:
        bob = other.new_page()
        sign_in(bob, stack, "bob")
        response = bob.goto("/workspaces/alice-only")
        assert response.status == 404
        assert bob.locator("h1").inner_text() == "Not found"
        shot(bob, "08-not-found")
        assert bob.request.get("/workspaces/alice-only/zone").status == 404
        assert bob.request.get("/workspaces/alice-only/live").status == 404
    finally:
        other.close()


def test_a_form_posted_without_its_csrf_token_is_refused(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Csrf Check", "csrf-check")
    etag = page.locator('#ws-actions input[name="etag"]').first.get_attribute("value")
    refused = page.request.post("/workspaces/csrf-check/suspend", form={"etag": etag})
    assert refused.status == 403
    assert "nothing was changed" in refused.text()
    forged = page.request.post("/workspaces/csrf-check/suspend", form={"csrf": "forged", "etag": etag})
    assert forged.status == 403
    page.reload()
    assert page.locator("#ws-status").inner_text() != "Suspended"
    assert page.get_by_role("button", name="Suspend").is_visible()


def test_a_page_opened_with_an_expired_session_returns_to_it_after_sign_in(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Come Back", "come-back")
    stack.expire_sessions()
    sign_in(page, stack, "bob", start="/workspaces/come-back?events_before=999999")
    assert page.url == stack.url + "/workspaces/come-back?events_before=999999"
    assert page.locator("h1").inner_text() == "Come Back"


def test_a_tenant_named_like_markup_shows_as_text(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    name = "<img src=x onerror=alert(1)>"
    create_workspace(page, name, "markup-name")
    assert page.locator("h1").inner_text() == name
    assert page.locator("main img").count() == 0
    page.goto("/")
    assert page.get_by_role("link", name=name).is_visible()
    assert page.locator("main img").count() == 0
    headers = page.request.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_the_owner_suspends_resumes_deletes_after_confirming_and_restores(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Lifecycle", "lifecycle")
    page.wait_for_selector("#ws-status .status.ok", timeout=20_000)
    page.get_by_role("button", name="Suspend").click()
    page.wait_for_url(re.compile(r".*notice=suspended"))
    assert page.locator("#ws-status").inner_text() == "Suspended"
    page.get_by_role("button", name="Resume").click()
    page.wait_for_url(re.compile(r".*notice=resumed"))
    page.get_by_role("link", name="Delete…").click()
    page.get_by_label(re.compile("to confirm")).fill("wrong")
    page.get_by_role("button", name="Delete workspace").click()
    assert "nothing was deleted" in page.locator(".problem").inner_text()
    page.get_by_label(re.compile("to confirm")).fill("lifecycle")
    shot(page, "09-delete-confirmation")
    page.get_by_role("button", name="Delete workspace").click()
    page.wait_for_url(re.compile(r".*notice=deleted"))
    assert page.locator("#ws-status").inner_text() == "Being deleted"
    shot(page, "10-workspace-being-deleted", full_page=False)
    page.get_by_role("button", name="Restore").click()
    page.wait_for_url(re.compile(r".*notice=restored"))
    page.wait_for_selector("#ws-status .status.ok", timeout=20_000)


def test_the_owner_adds_and_removes_an_admin_who_then_sees_the_workspace(
    browser: Any, page: Any, stack: LiveStack
) -> None:
    sign_in(page, stack, "bob")
    create_workspace(page, "Shared", "shared")
    page.get_by_label("Add an admin by their ID").fill(stack.suite.admin_user.sub)
    page.get_by_role("button", name="Add admin").click()
    page.wait_for_url(re.compile(r".*notice=admin-added"))
    assert stack.suite.admin_user.sub in page.locator("#admins").inner_text()
    page.get_by_role("button", name=re.compile("^Remove")).click()
    page.wait_for_url(re.compile(r".*notice=admin-removed"))
    assert "No admins besides the owner" in page.locator("#admins").inner_text()


def test_operators_filter_by_status_and_trouble_search_and_page_by_cursor(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "alice")
    create_workspace(page, "Findable Industries", "findable-industries")  # this test's own: any order works
    page.goto("/operators")
    shot(page, "11-operators")
    page.get_by_label("Slug or name contains").fill("FINDABLE")
    page.get_by_role("button", name="Filter").click()
    names = page.locator(".tenant-name").all_inner_texts()
    assert names == ["Findable Industries"]
    page.goto("/operators?trouble=1")
    assert page.locator(".empty").is_visible() or all(
        "failing" in t.lower() or "stopped" in t.lower() for t in page.locator(".tenant").all_inner_texts()
    )
    page.goto("/operators?status=active")
    statuses = set(page.locator(".tenant .status").all_inner_texts())
    assert statuses <= {"Active"}


def test_pages_read_well_on_a_phone(browser: Any, stack: LiveStack) -> None:
    context = browser.new_context(viewport=PHONE, base_url=stack.url, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        sign_in(phone, stack, "bob")
        shot(phone, "12-phone-my-workspaces", full_page=False)
        create_workspace(phone, "Phone View", "phone-view")  # this test's own: it passes in any order
        phone.wait_for_selector("#ws-status .status.ok", timeout=20_000)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
        shot(phone, "13-phone-workspace", full_page=False)
        phone.locator("#dns-title").scroll_into_view_if_needed()
        shot(phone, "14-phone-dns-records", full_page=False)
        phone.goto("/new")
        shot(phone, "15-phone-new-workspace", full_page=False)
    finally:
        context.close()


def test_sign_out_ends_the_session_at_the_portal_and_the_issuer(page: Any, stack: LiveStack) -> None:
    sign_in(page, stack, "bob")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(stack.url + "/auth/signed-out")
    shot(page, "16-signed-out")
    page.goto("/")
    assert "/application/o/authorize/" in page.url
    ended = [r for r in stack.suite.authentik.controls.log if "end-session" in r.path]
    assert ended, "the issuer's end-session endpoint was not used"
