"""The list of channel adapters: adding a channel is one line here plus its folder."""

from __future__ import annotations

import importlib
import logging

from contract.channel import AdapterFactory

logger = logging.getLogger(__name__)

# Module paths of each channel's ``adapter.create`` factory, loaded lazily so a broken or
# unconfigured channel never stops the others from importing.
ADAPTERS: tuple[str, ...] = (
    "channels.api.adapter",
    "channels.twilio_sms.adapter",
    "channels.email.adapter",
    "channels.telegram.adapter",
)


def factories() -> list[AdapterFactory]:
    """Import every registered adapter module and return its ``create`` factory."""
    found: list[AdapterFactory] = []
    for path in ADAPTERS:
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as err:
            if err.name is None or not path.startswith(err.name):
                raise
            logger.warning("channel adapter %s is not installed", path)
            continue
        found.append(module.create)
    return found
