"""SMS and WhatsApp through Twilio: both reach a person's phone number."""

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="sms",
        endpoint_kind="phone",
        label="SMS",
        badge="SMS",
        colour="#0f7b6c",
        labels={"zh": "短信"},
    ),
    ChannelInfo(
        name="whatsapp",
        endpoint_kind="phone",
        label="WhatsApp",
        badge="WA",
        colour="#1fa855",
        # WhatsApp's customer-service window: free text only within 24 hours of the
        # customer's last message, approved templates after it.
        session_window_s=24 * 3600,
        typing=True,
        labels={"zh": "WhatsApp"},
    ),
)
