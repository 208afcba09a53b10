"""WeChat: followers of an Official Account, addressed by their OpenID."""

from channels.wechat.const import CHANNEL, ENDPOINT_KIND, WINDOW_S
from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name=CHANNEL,
        endpoint_kind=ENDPOINT_KIND,
        label="WeChat",
        badge="WX",
        colour="#07c160",
        session_window_s=WINDOW_S,
        labels={"zh": "微信"},
    ),
)
