"""Email: SMTP in, a relay out; threads by Message-ID, answered within hours, not seconds."""

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="email",
        endpoint_kind="email",
        label="Email",
        badge="MAIL",
        colour="#8250df",
        media="email",
        capacity=5,
        first_response_s=4 * 3600,
        labels={"zh": "邮件"},
    ),
)
