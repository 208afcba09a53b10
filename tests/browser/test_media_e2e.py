"""MMS photos that arrive late: the console shows them fetching, then the images, live."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from channels.twilio_sms.testing.fake_api import start_fake_twilio
from channels.twilio_sms.testing.simulator import signed_inbound
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "media-e2e-auth-token"
PUBLIC_URL = "http://127.0.0.1:8080"
PASSWORD = "password-ann"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain one-colour PNG (a real image the browser decodes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def agent_ready(page: Page, client: TestClient[Any, Any], base: str) -> None:
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "ann", "password": PASSWORD, "display_name": "Ann Archer"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill("ann")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")


async def mms(client: TestClient[Any, Any], sid: str, text: str, media: list[str]) -> None:
    body, headers = signed_inbound(
        PUBLIC_URL,
        AUTH_TOKEN,
        ACCOUNT_SID,
        from_="+12025550143",
        to="+14155550100",
        body=text,
        message_sid=sid,
        media=[(url, "image/png") for url in media],
    )
    async with client.post("/webhooks/twilio/messaging", data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def test_photos_show_fetching_then_appear_without_reload_and_a_failed_one_retries(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    fake, api_base = await start_fake_twilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False
    )
    try:
        client = await hub_client(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_api_base=api_base,
            public_url=PUBLIC_URL,
            media_retry_delays_s=[0.3] * 30,
        )
        base = str(client.make_url("/")).rstrip("/")
        page = await new_page()
        await agent_ready(page, client, base)

        # Twilio's media store answers 503 for both photos until it recovers.
        urls = [
            fake.add_media(png(240, 160, (214, 69, 65)), "image/png", base_url=api_base),
            fake.add_media(png(240, 160, (46, 125, 50)), "image/png", base_url=api_base),
        ]
        sids = [u.rsplit("/", 1)[-1] for u in urls]
        for sid in sids:
            fake.fail_media(sid, times=None, status=503)
        await mms(client, "MM" + "a" * 32, "Photos of the damaged box", urls)

        await page.get_by_test_id("offer-accept").first.click()
        item = page.get_by_test_id("timeline-item").filter(
            has=page.get_by_test_id("message-text").get_by_text("Photos of the damaged box")
        )
        atts = item.get_by_test_id("attachment")
        await expect(atts).to_have_count(2)
        for i in range(2):
            await expect(atts.nth(i)).to_have_attribute("data-state", "pending")
            await expect(atts.nth(i)).to_have_text("photo, fetching…")
        await page.evaluate("window.__sameDocument = true")
        await page.screenshot(
            path=artifacts / "console-media-1-fetching.png", animations="disabled"
        )

        # The store recovers: the worker's next attempt fetches both, the console updates live.
        fake.media_failures.clear()
        for i in range(2):
            await expect(atts.nth(i)).to_have_attribute("data-state", "fetched")
        images = item.locator("img")
        await expect(images).to_have_count(2)
        ids = [int(await atts.nth(i).get_attribute("data-attachment-id") or 0) for i in range(2)]
        assert ids == sorted(ids)  # index order kept
        for i in range(2):
            await expect(images.nth(i)).to_have_js_property("complete", True)
            assert await images.nth(i).evaluate("img => img.naturalWidth") == 240
        assert await page.evaluate("window.__sameDocument === true")  # no reload
        await page.screenshot(path=artifacts / "console-media-2-fetched.png", animations="disabled")

        # A photo the store refuses outright (400): unavailable at once; the agent retries it.
        late = fake.add_media(png(240, 160, (25, 118, 210)), "image/png", base_url=api_base)
        fake.fail_media(late.rsplit("/", 1)[-1], times=None, status=400)
        await mms(client, "MM" + "b" * 32, "And the label", [late])
        refused = (
            page.get_by_test_id("timeline-item")
            .filter(has=page.get_by_test_id("message-text").get_by_text("And the label"))
            .get_by_test_id("attachment")
        )
        await expect(refused).to_have_attribute("data-state", "failed")
        await expect(refused).to_contain_text("photo unavailable")
        await page.screenshot(path=artifacts / "console-media-3-failed.png", animations="disabled")
        fake.media_failures.clear()
        await refused.get_by_test_id("attachment-retry").click()
        await expect(refused).to_have_attribute("data-state", "fetched")
        await expect(refused.locator("img")).to_have_js_property("complete", True)
        assert await page.evaluate("window.__sameDocument === true")
        await page.screenshot(path=artifacts / "console-media-4-retried.png", animations="disabled")
    finally:
        await fake.close()
