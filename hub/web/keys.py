"""Every typed ``web.AppKey`` of the hub's aiohttp application."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

if TYPE_CHECKING:
    from config.settings import Settings
    from contract.channel import ChannelAdapter
    from hub.services import Hub

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
HUB: web.AppKey[Hub] = web.AppKey("hub")
HTTP: web.AppKey[Callable[[], ClientSession]] = web.AppKey("http")
ADAPTERS: web.AppKey[dict[str, ChannelAdapter]] = web.AppKey("adapters")
