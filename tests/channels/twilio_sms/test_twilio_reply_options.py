"""What a reply may ask of the provider: an allow-list per channel; the hub derives the rest."""

from __future__ import annotations

from typing import Any

import pytest

from tests.channels.twilio_sms.conftest import fixture_body
from tests.channels.twilio_sms.test_twilio_webhook import (
    Env,
    drain,
    env,
    make_env,
    messages,
    only_conversation,
    post,
    until,
)
from tests.conftest import AUTH

__all__ = ["env", "make_env"]  # fixtures shared with the webhook tests


async def _reply(env: Env, conversation_id: int, **body: Any) -> tuple[int, Any]:
    async with env.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=AUTH
    ) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "options",
    [
        {"from": "+19005550100"},  # send as another number of the account
        {"reply_token": "someone-elses-token"},  # email Reply-To of another conversation
        {"thread_key": "-1001234567890"},  # another Telegram chat
        {"last_inbound_at": "2099-01-01T00:00:00+00:00"},  # skip the 24-hour window
        {"auto": True},  # pass as an automatic reply (suppresses loop guards)
        {"template_sid": "HX" + "a" * 32},  # a template on SMS, where there are none
    ],
)
async def test_forged_sms_reply_options_are_refused_and_nothing_is_sent(
    env: Env, options: dict[str, Any]
) -> None:
    await post(env.client, fixture_body("inbound__sms_plain"))
    conv = await only_conversation(env.client, "+447700900123")
    status, body = await _reply(env, conv["id"], text="hi", options=options)
    assert status == 400
    assert next(iter(options)) in body["detail"]
    await drain(env.client)
    assert [m["direction"] for m in await messages(env.client, conv["id"])] == ["in"]
    assert env.fake.sent == []


async def test_whatsapp_template_is_an_allowed_option(env: Env) -> None:
    await post(env.client, fixture_body("inbound__whatsapp_text"))
    conv = await only_conversation(env.client, "+447700900123")
    template = "HX" + "b" * 32
    status, msg = await _reply(
        env,
        conv["id"],
        text="Your order update",
        options={"template_sid": template, "template_variables": {"1": "Ann"}},
    )
    assert status == 201, msg
    await until(env, msg, lambda m: m["status"] != "pending")
    [sent] = env.fake.sent
    assert sent["ContentSid"] == template
    assert sent["From"] == "whatsapp:+14155238886"  # derived from the conversation
