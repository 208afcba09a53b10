"""The API channel's facts: contacts posted by integrations to ``/api/v1/inbound``."""

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="api",
        endpoint_kind="api",
        label="API",
        badge="API",
        colour="#3d4a5a",
        first_response_s=600,
        labels={"zh": "API"},
    ),
)
