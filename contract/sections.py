"""A channel's own settings section, ``[channels.<name>]``, validated by its typed model."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contract.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def channel_section(
    settings: Any, name: str, model: type[M], *, switch: str | None = None
) -> M | None:
    """The section validated by ``model``; None when there is none (or its ``switch`` key,
    e.g. the account id, is empty): the channel is off. A section that does not validate
    stops the hub at start with the first problem named."""
    section = settings.channels.get(name)
    if not section or (switch is not None and not section.get(switch)):
        return None
    try:
        return model.model_validate(section)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid [channels.{name}] setting {where}: {first['msg']}") from None
