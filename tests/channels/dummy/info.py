"""A throwaway channel that proves a channel is one folder and one registry line."""

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="dummy",
        endpoint_kind="dummy",
        label="Dummy",
        badge="DMY",
        colour="#b35c00",
        session_window_s=3600,
        labels={"zh": "测试渠道"},
    ),
)
