"""The channels this hub runs: adding a channel is its folder plus one line here.

Each entry is a channel package holding ``info.py`` (``INFOS``, its ``ChannelInfo``s) and
``adapter.py`` (``create``, the adapter factory); it may add ``cli.py`` (``HELP`` and
``main(argv)``: a ``hub <name>`` subcommand) and ``testing/demo.py`` (the fake provider and
simulated traffic ``make run`` uses). Only the composition root (``server``) reads this.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Sequence
from types import ModuleType

from contract.channel import AdapterFactory
from contract.info import ChannelInfo, Channels

logger = logging.getLogger(__name__)

CHANNELS: tuple[str, ...] = (
    "channels.api",
    "channels.twilio_sms",
    "channels.email",
    "channels.telegram",
    "channels.twilio_voice",
    "channels.webchat",
    "channels.wechat",
    "channels.inapp",
)


def _optional(package: str, module: str) -> ModuleType | None:
    """``package.module`` if the channel has one."""
    name = f"{package}.{module}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def folder_name(package: str) -> str:
    """The channel folder's name: the command and settings prefix (``telegram``)."""
    return package.rpartition(".")[2]


def channels(packages: Sequence[str] = CHANNELS) -> Channels:
    """Every declared channel's facts."""
    infos: list[ChannelInfo] = []
    for package in packages:
        infos.extend(importlib.import_module(f"{package}.info").INFOS)
    return Channels(infos)


def factories(packages: Sequence[str] = CHANNELS) -> list[AdapterFactory]:
    """Each channel's adapter factory (its third-party libraries load here, not at import)."""
    found: list[AdapterFactory] = []
    for package in packages:
        try:
            module = importlib.import_module(f"{package}.adapter")
        except ModuleNotFoundError as err:
            if err.name is None or not package.startswith(err.name.split(".")[0]):
                logger.warning("channel %s needs %s, which is not installed", package, err.name)
                continue
            raise
        found.append(module.create)
    return found


def commands(packages: Sequence[str] = CHANNELS) -> dict[str, tuple[str, str]]:
    """``hub`` subcommands the channels add: name -> (module with ``main(argv)``, help)."""
    found: dict[str, tuple[str, str]] = {}
    for package in packages:
        if importlib.util.find_spec(f"{package}.cli") is None:
            continue
        # The help line is read from the module's source, so ``hub --help`` stays fast and
        # works even when the channel's library is missing.
        found[folder_name(package)] = (f"{package}.cli", _help_of(f"{package}.cli"))
    return found


def _help_of(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    with open(spec.origin, encoding="utf-8") as source:
        for line in source:
            if line.startswith("HELP = "):
                return line.partition("=")[2].strip().strip("\"'")
    return ""


def demos(packages: Sequence[str] = CHANNELS) -> dict[str, ModuleType]:
    """The channels' demo modules (``testing/demo.py``) for ``make run``, by package."""
    return {p: m for p in packages if (m := _optional(p, "testing.demo")) is not None}
