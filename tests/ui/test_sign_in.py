"""Federated sign-in in a real browser: headless Chromium, a real OpenID Connect provider, the served demo.

The provider (panva's oidc-provider, `tests/oidc_server.py`) releases the role in the claim
``zoolens_role`` of the ``roles`` scope: ann is a lead, vic a viewer, mallory has no role (and
is refused: with no --oidc-default-role, someone without a role does not get in).
"""

from __future__ import annotations

import time

import pytest

from dashboard.sign_in import OidcSignIn
from project.reviews import ReviewStore
from project.roles import ClaimRoles
from tests.dashboard.serving import free_port, served
from tests.oidc_server import oidc_provider

pytestmark = [pytest.mark.ui, pytest.mark.server]

ACCOUNTS = {"ann": {"zoolens_role": "lead", "name": "Ann"}, "vic": {"zoolens_role": "viewer"},
            "mallory": {"zoolens_role": "administrator"}}


@pytest.fixture
def signed_in_app(tmp_path, demo_project):
    """The demo served behind OpenID Connect sign-in at a provider on loopback; yields (app URL, store)."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with oidc_provider(tmp_path, app_url, ACCOUNTS) as provider, \
            ReviewStore(path=tmp_path / "reviews.sqlite") as store:
        sign_in = OidcSignIn(provider.issuer, provider.client_id, provider.client_secret, f"{app_url}/login",
                             roles=ClaimRoles(claim="zoolens_role"), scopes=["openid", "profile", "roles"])
        with served(demo_project, f"ui-oidc-{port}", port=port, reviews=store, sign_in=sign_in,
                    cookie_secret="a-test-only-cookie-secret-of-some-length") as url:
            yield url, store, provider


def shown(page, text: str) -> bool:
    """Whether the page shows ``text`` (in Bokeh's shadow DOM too, which playwright's locators enter)."""
    return page.get_by_text(text).count() > 0


def sign_in_at_provider(page, url, login):
    """Open the app, be sent to the provider, sign in there (any password) and consent."""
    page.goto(url)
    page.wait_for_selector("input[name=login]", timeout=60_000)
    assert page.url.startswith("http://127.0.0.1:") and "/interaction/" in page.url  # the provider's page
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password the provider's development login accepts")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Authorize", timeout=30_000)  # the consent page
    page.click("button[type=submit]")


def test_a_role_claim_is_honoured_and_logout_signs_out_at_the_provider(browser, signed_in_app):
    url, store, provider = signed_in_app
    context = browser.new_context()
    page = context.new_page()
    sign_in_at_provider(page, url, "ann")
    page.wait_for_selector("text=Reviewing as", timeout=90_000)
    assert page.url.rstrip("/") == url
    assert shown(page, "Reviewing as ann (lead)") and shown(page, "signed in (OpenID Connect)")
    page.get_by_role("button", name="Flag subject").click()  # a lead's action, through the real page
    deadline = time.monotonic() + 30
    while store.last_decision_id() == 0:
        assert time.monotonic() < deadline, "the flag never reached the store"
        time.sleep(0.2)
    assert store.history()[["reviewer", "role", "authentication", "action"]].values.tolist() == [
        ["ann", "lead", "oidc", "flag"]]

    page.goto(f"{url}/logout")  # the app's cookies go, then the provider's own sign-out page
    page.wait_for_selector("button[name=logout]", timeout=30_000)
    assert page.url.startswith(provider.issuer)
    page.click("button[name=logout]")
    # Back at the app, signed out everywhere: the app sends the browser to the provider's login form.
    page.wait_for_selector("input[name=login]", timeout=60_000)
    assert not shown(page, "Reviewing as")
    assert not [cookie for cookie in context.cookies() if cookie["name"] in ("user", "id_token")]
    context.close()


def test_a_viewer_looks_but_has_no_review_buttons(browser, signed_in_app):
    url, store, _ = signed_in_app
    context = browser.new_context()
    page = context.new_page()
    sign_in_at_provider(page, url, "vic")
    page.wait_for_selector("text=Reviewing as", timeout=90_000)
    assert shown(page, "Reviewing as vic (viewer)")
    page.wait_for_selector("text=you can look and export", timeout=30_000)
    assert page.get_by_role("button", name="Accept").count() == 0
    assert page.get_by_role("button", name="Flag subject").count() == 0
    assert store.last_decision_id() == 0
    context.close()


def test_a_claim_that_maps_to_no_role_is_refused(browser, signed_in_app):
    url, store, _ = signed_in_app
    context = browser.new_context()
    page = context.new_page()
    sign_in_at_provider(page, url, "mallory")  # role "administrator" is not a zoolens role
    page.wait_for_selector("text=not authorized", timeout=60_000)
    assert not shown(page, "Reviewing as")
    response = page.request.get(url)  # signed in at the provider, still refused by the app
    assert response.status == 403
    context.close()
