"""In-app messaging: users of the company's own mobile app, by app and user id."""

from channels.inapp.const import CHANNEL, ENDPOINT_KIND
from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name=CHANNEL,
        endpoint_kind=ENDPOINT_KIND,
        label="In-app",
        badge="APP",
        colour="#5f3dc4",
        typing=True,
        labels={"zh": "应用内"},
    ),
)
