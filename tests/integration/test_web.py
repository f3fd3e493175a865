"""The web page in a real browser: headless Chromium (the Debian package), driven by Playwright, against the page
the stack serves (WebUrl). Upload a photo and a file that is not one; watch both reach their outcome."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from tests import images

from .conftest import ROOT

SCREENSHOT = ROOT / ".localcloud" / "web-page.png"  # docs/web-page.png is a copy of one (README)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/setup.sh installs the Debian package"
    with sync_playwright() as p:
        # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox cannot start
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_upload_a_photo_and_a_bad_file_through_the_page(browser, stack, client, tmp_path):
    photo, bad = tmp_path / "harbour.jpg", tmp_path / "notes.png"
    photo.write_bytes(images.jpeg(1600, 1200))
    bad.write_text("not a picture at all")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.outputs["LocalWebUrl"])
    expect(page.get_by_role("heading", name="Images")).to_be_visible()

    page.get_by_test_id("file-input").set_input_files([str(photo), str(bad)])
    good_card = page.locator('[data-testid="image-card"]', has_text="harbour.jpg")
    bad_card = page.locator('[data-testid="image-card"]', has_text="notes.png")
    expect(good_card).to_have_attribute("data-status", "PROCESSED", timeout=60_000)
    expect(bad_card).to_have_attribute("data-status", "REJECTED", timeout=60_000)

    image = good_card.locator("img")
    expect(image).to_have_attribute("alt", "harbour.jpg")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=20_000)
    expect(bad_card.get_by_test_id("reason")).to_contain_text("not an image format we accept")
    for card in (good_card, bad_card):  # the ids are the API's
        assert client.image(card.get_attribute("data-image-id")).json()["status"] == card.get_attribute("data-status")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    good_card.get_by_role("button", name="Trace of harbour.jpg").click()
    trace = page.get_by_test_id("trace-table")
    expect(trace).to_contain_text("Resize image")
    expect(trace).to_contain_text("Mark processed")
    page.keyboard.press("Escape")  # the dialog closes from the keyboard

    image_id = good_card.get_attribute("data-image-id")
    page.once("dialog", lambda dialog: dialog.accept())
    good_card.get_by_role("button", name="Delete harbour.jpg").click()
    expect(page.locator(f'[data-image-id="{image_id}"]')).to_have_count(0)
    assert client.image(image_id).status_code == 404
    assert errors == []
