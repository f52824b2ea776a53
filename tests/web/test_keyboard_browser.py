"""The forms work with the keyboard alone, and a refused form puts the focus where to act.

axe cannot press keys: these tests do, in chromium. They move with Tab,
tick with Space and submit with Enter, checking on the way that each field is
reached in order and named by its label. After a refusal the page shown again
focuses the field to correct, which carries the error as its description, so
that a screen reader reads the two together.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from idp.extensions import db
from idp.oauth.clients import register_hub_client
from tests.factories import PASSWORD, make_channel, make_org, make_user
from tests.flows.live_client import authorize_url
from tests.flows.test_consent_story import Partner
from tests.oauth.conftest import pkce_pair

pytestmark = pytest.mark.browser


def tab_to(page, target, presses: int = 25) -> None:
    """Press Tab until ``target`` has the focus; fail when it never does."""
    for _ in range(presses):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} is never reached with Tab")


def focused(page):
    return page.locator(":focus")


def test_signing_in_with_the_keyboard_alone(app, live_server, page):
    with app.app_context():
        register_hub_client("client", [f"{live_server.url}/demo/callback"])
        make_user("client", make_org("client", "Blue Bakery"), email="bea@bakery.example")
        db.session.commit()
        db.session.remove()
    _, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "client-hub", challenge, "st-keys"))

    expect(focused(page)).to_have_accessible_name("Email")
    page.keyboard.type("bea@bakery.example")
    page.keyboard.press("Tab")
    expect(focused(page)).to_have_accessible_name("Password")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")

    # Refused: the address stays, and the focus waits in the password field, with the reason.
    expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
    expect(focused(page)).to_have_accessible_name("Password")
    expect(focused(page)).to_have_accessible_description("The email or password is wrong.")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(focused(page)).to_have_accessible_name("Sign in")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/demo/callback*")
    assert "code=" in page.url and "state=st-keys" in page.url


def test_picking_numbers_on_the_consent_screen_with_the_keyboard_alone(app, live_server, page):
    partner = Partner.acme(app, live_server.url)
    with app.app_context():
        bakery = make_org("client", "Blue Bakery")
        make_user("client", bakery, "owner", email="bea@bakery.example")
        numbers = [make_channel(bakery, "live").phone_number for _ in range(3)]
        db.session.commit()
        db.session.remove()
    page.goto(partner.consent_link("bea@bakery.example"))

    tab_to(page, page.get_by_role("link", name="I have a Client Hub account: log in"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/login\?"))
    expect(focused(page)).to_have_accessible_name("Email")
    page.keyboard.type("bea@bakery.example")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Acme Messaging wants to connect to Blue Bakery")

    # Each number is a checkbox named by its label, reached in turn with Tab.
    for number in numbers[:2]:
        box = page.get_by_role("checkbox", name=re.compile(re.escape(number)))
        tab_to(page, box)
        page.keyboard.press("Space")
        expect(box).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Allow"))
    with page.expect_navigation(url=re.compile(re.escape(partner.redirect_uri) + r"\?")):
        page.keyboard.press("Enter")

    code = re.search(r"[?&]code=([^&]+)", page.url).group(1)
    exchanged = partner.token(
        grant_type="authorization_code",
        code=code,
        redirect_uri=partner.redirect_uri,
        code_verifier=partner.verifier,
    )
    assert exchanged.status_code == 200, exchanged.text
    with app.app_context():
        from idp.channels.models import Channel

        granted = {
            db.session.get(Channel, channel_id).phone_number
            for channel_id in exchanged.json()["grant"]["channels"]
        }
    assert granted == set(numbers[:2])


def test_a_form_shown_again_focuses_its_first_field_with_errors(app, live_server, page):
    page.goto(f"{live_server.url}/signup")
    page.fill("#email", "bea@bakery.example")
    page.fill("#password", "password")
    page.fill("#business_name", "Bea's Bakery")
    page.get_by_role("button", name="Sign up").click()
    expect(focused(page)).to_have_accessible_name("Password")
    expect(focused(page)).to_have_accessible_description(re.compile("too common"))
    expect(page.get_by_label("Email")).to_have_value("bea@bakery.example")

    # The sign-up of a partner's consent link (another kind of form), its name left out.
    partner = Partner.acme(app, live_server.url)
    page.goto(partner.consent_link("owner@new-bakery.example"))
    page.get_by_label("Password").fill("a-long-client-passphrase-2026")
    page.get_by_role("button", name="Create account").click()
    expect(focused(page)).to_have_accessible_name("Business name")
    expect(focused(page)).to_have_attribute("aria-invalid", "true")

    # The password change focuses its current password only when nothing was refused yet.
    with app.app_context():
        make_user("client", make_org("client", "Blue Bakery"), email="bea@bakery.example")
        db.session.commit()
        db.session.remove()
    page.goto(f"{live_server.url}/login?hub=client")
    page.get_by_label("Email").fill("bea@bakery.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/account/password")
    expect(focused(page)).to_have_accessible_name("Current password")
    page.keyboard.type(PASSWORD)
    page.get_by_label("New password", exact=True).fill("password")
    page.get_by_label("Repeat the new password").fill("password")
    page.get_by_role("button", name="Change the password").click()
    expect(focused(page)).to_have_accessible_name("New password")
    expect(focused(page)).to_have_accessible_description(re.compile("too common"))


def test_a_refused_pick_of_numbers_focuses_the_numbers(app, live_server, page):
    partner = Partner.acme(app, live_server.url)
    with app.app_context():
        bakery = make_org("client", "Blue Bakery")
        make_user("client", bakery, "owner", email="bea@bakery.example")
        make_channel(bakery, "live")
        db.session.commit()
        db.session.remove()
    page.goto(partner.consent_link("bea@bakery.example"))
    page.get_by_role("link", name="I have a Client Hub account: log in").click()
    page.get_by_label("Email").fill("bea@bakery.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    box = page.get_by_role("checkbox")
    box.evaluate("box => box.value = 'ch_not_of_this_business'")  # a stale or tampered form
    box.check()
    page.get_by_role("button", name="Allow").click()

    expect(page.get_by_role("alert")).to_have_text("Choose among your own channels.")
    expect(focused(page)).to_have_role("checkbox")
    expect(page.get_by_role("group", name="On these numbers")).to_have_accessible_description(
        "Choose among your own channels."
    )


STYLE_OF_FOCUSED = """() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  return {name: element.id || element.textContent.trim(), outline: style.outlineStyle,
          width: parseFloat(style.outlineWidth), offset: parseFloat(style.outlineOffset),
          color: style.outlineColor};
}"""


def contrast(color: str, background: str = "rgb(255, 255, 255)") -> float:
    """The WCAG contrast ratio of two computed ``rgb()`` colours."""

    def luminance(rgb: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(color), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_fields_and_the_focus_stand_out_from_the_page(live_server, page):
    page.goto(f"{live_server.url}/login?hub=client")
    # A text field is seen by its border alone (WCAG 1.4.11: 3:1 against the card).
    for field in ("Email", "Password"):
        border = page.get_by_label(field).evaluate("f => getComputedStyle(f).borderTopColor")
        assert contrast(border) >= 3, f"{field}'s border {border} is too faint"

    # The focus is a ring of its own around each control, clear against the white card.
    seen = []
    for _ in range(5):  # the two fields, the button, the two links
        ring = page.evaluate(STYLE_OF_FOCUSED)
        seen.append(ring["name"])
        assert ring["outline"] == "solid" and ring["width"] >= 2, ring
        assert ring["offset"] >= 1 and contrast(ring["color"]) >= 3, ring
        page.keyboard.press("Tab")
    assert seen == [
        "email",
        "password",
        "Sign in",
        "Forgot your password?",
        "Create a Client Hub account",
    ]


FOCUSED_NAME = "() => document.activeElement.id || document.activeElement.textContent.trim()"


def tab_order(page, presses: int) -> list[str]:
    """What Tab reaches from the top of the page, in turn (an element's id, else its text)."""
    page.locator("body").focus()
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUSED_NAME))
    return reached


def test_tab_reaches_every_field_then_the_submit_button(app, live_server, page):
    base = live_server.url
    page.goto(f"{base}/signup")
    assert tab_order(page, 4) == ["email", "password", "business_name", "Sign up"]
    page.goto(f"{base}/password-reset")
    assert tab_order(page, 2) == ["email", "Send the link"]
    partner = Partner.acme(app, base)
    page.goto(partner.consent_link("owner@new-bakery.example"))
    assert tab_order(page, 5) == [
        "I have a Client Hub account: log in",
        "email",
        "password",
        "business_name",
        "Create account",
    ]
