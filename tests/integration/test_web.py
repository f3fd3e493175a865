"""The web page in a real browser: headless Chromium (the Debian package), driven by Playwright, against the page
the stack serves (WebUrl). Sign in, upload a photo and a file that is not one, watch both reach their outcome; see
only one's own images."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests import images

from .conftest import ROOT, Client, new_user, sign_in

SCREENSHOT = ROOT / ".localcloud" / "web-page.png"  # docs/web-page.png is a copy of one (README)


def test_sign_in_upload_a_photo_and_a_bad_file_and_see_only_ones_own_images(browser, stack, client, tmp_path):
    # GIVEN a user of the stack's pool, and an image of somebody else's
    username, password = new_user(stack, "web")
    me = Client(stack, sign_in(stack, username, password))
    someone_elses = client.upload(images.jpeg(300, 200), "image/jpeg")
    photo, bad = tmp_path / "harbour.jpg", tmp_path / "notes.png"
    photo.write_bytes(images.jpeg(1600, 1200))
    bad.write_text("not a picture at all")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))  # a CSP refusal
    page.goto(stack.outputs["LocalWebUrl"])

    # WHEN a wrong password is typed THEN the page says so; with the right one, the user's (empty) gallery shows
    page.get_by_test_id("sign-in-username").fill(username)
    page.get_by_test_id("sign-in-password").fill("Wrong-password-1")
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("sign-in-error")).to_contain_text("Wrong user name or password")
    page.get_by_test_id("sign-in-password").fill(password)
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_role("heading", name="Images")).to_be_visible()
    expect(page.get_by_test_id("who-name")).to_have_text(username)
    expect(page.get_by_text("No images yet.")).to_be_visible()
    assert page.evaluate("Object.keys(localStorage)") == []  # the tokens stay in the tab's sessionStorage

    page.get_by_test_id("file-input").set_input_files([str(photo), str(bad)])
    good_card = page.locator('[data-testid="image-card"]', has_text="harbour.jpg")
    bad_card = page.locator('[data-testid="image-card"]', has_text="notes.png")
    expect(good_card).to_have_attribute("data-status", "PROCESSED", timeout=60_000)
    expect(bad_card).to_have_attribute("data-status", "REJECTED", timeout=60_000)

    image = good_card.locator("img")
    expect(image).to_have_attribute("alt", "harbour.jpg")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=20_000)
    expect(bad_card.get_by_test_id("reason")).to_contain_text("not an image format we accept")
    for card in (good_card, bad_card):  # the ids are the API's, and the signed-in user's
        assert me.image(card.get_attribute("data-image-id")).json()["status"] == card.get_attribute("data-status")
    assert page.locator(f'[data-image-id="{someone_elses}"]').count() == 0
    page.reload()  # the gallery as the API lists it: only this user's two
    expect(page.get_by_test_id("image-card")).to_have_count(2)
    assert page.locator(f'[data-image-id="{someone_elses}"]').count() == 0
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    good_card.get_by_role("button", name="Trace of harbour.jpg").click()
    trace = page.get_by_test_id("trace-table")
    expect(trace).to_contain_text("Resize image")
    expect(trace).to_contain_text("Store renditions")
    expect(trace).to_contain_text("Mark processed")
    page.keyboard.press("Escape")  # the dialog closes from the keyboard

    # a click on the picture sets its focal point (this stack makes no crops: it is kept for them)
    image_id = good_card.get_attribute("data-image-id")
    good_card.get_by_role("button", name="Focal point of harbour.jpg").click()
    whole = page.get_by_test_id("focus-image")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=whole.element_handle(), timeout=20_000)
    box = whole.bounding_box()
    assert box and abs(box["width"] / box["height"] - 4 / 3) < 0.02  # the whole picture, not the card's crop
    whole.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    expect(page.get_by_test_id("focus-status")).to_have_text("Focal point saved. This deployment makes no crops yet.")
    point = me.image(image_id).json()["focalPoint"]
    assert abs(point["x"] - 0.25) < 0.01 and abs(point["y"] - 0.75) < 0.01, point
    # from the keyboard: the marker starts at the point, five presses of the right arrow move it 25%, Enter sets it
    page.get_by_test_id("focus-frame").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 10
    while (point := me.image(image_id).json()["focalPoint"])["x"] < 0.3 and time.monotonic() < deadline:
        time.sleep(0.1)  # the status reads the same as after the click: the record tells when this one landed
    assert abs(point["x"] - 0.5) < 0.01 and abs(point["y"] - 0.74) < 0.01, point
    expect(page.get_by_test_id("focus-status")).to_have_text("Focal point saved. This deployment makes no crops yet.")
    page.get_by_test_id("focus-clear").click()
    expect(page.get_by_test_id("focus-status")).to_have_text("Focal point cleared.")
    assert me.image(image_id).json()["focalPoint"] is None
    page.keyboard.press("Escape")

    page.once("dialog", lambda dialog: dialog.accept())
    good_card.get_by_role("button", name="Delete harbour.jpg").click()
    expect(page.locator(f'[data-image-id="{image_id}"]')).to_have_count(0)
    assert me.image(image_id).status_code == 404

    # signing out forgets the session: the page asks again, and so does a reload
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("sign-in-submit")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("sign-in-submit")).to_be_visible()
    assert errors == []
