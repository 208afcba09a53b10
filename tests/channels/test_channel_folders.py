"""Every channel folder holds what the registry and the console rely on (cf. Home
Assistant's hassfest): facts, an adapter factory, a README, fakes kept under testing/."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from channels import registry
from contract.info import ChannelInfo, Channels

PACKAGES = (*registry.CHANNELS, "tests.channels.dummy")
ROOT = Path(__file__).resolve().parents[2]
MEDIA = {"voice", "message", "email"}


def folder(package: str) -> Path:
    return ROOT.joinpath(*package.split("."))


@pytest.mark.parametrize("package", PACKAGES)
def test_a_channel_folder_declares_itself_completely(package: str) -> None:
    infos = importlib.import_module(f"{package}.info").INFOS
    assert infos, "a channel declares at least one ChannelInfo"
    for info in infos:
        assert isinstance(info, ChannelInfo)
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,19}", info.name), info.name
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,19}", info.endpoint_kind), info.endpoint_kind
        assert info.media in MEDIA
        assert info.capacity >= 1
        assert re.fullmatch(r"#[0-9a-f]{6}", info.colour), "a hex colour the badge can use"
        assert 1 <= len(info.badge) <= 4
        assert info.label
        assert info.first_response_s > 0
        assert info.session_window_s is None or info.session_window_s > 0
    assert callable(importlib.import_module(f"{package}.adapter").create)
    assert (folder(package) / "README.md").is_file()
    # Fakes and simulators live under testing/, never beside the production modules.
    loose = {p.name for p in folder(package).glob("*.py")} & {"fake_api.py", "simulator.py"}
    assert loose == set()


def test_channel_names_are_unique_across_folders() -> None:
    channels = registry.channels(PACKAGES)  # raises on a name declared twice
    assert len(channels) == sum(len(importlib.import_module(f"{p}.info").INFOS) for p in PACKAGES)


def test_a_name_declared_twice_is_refused() -> None:
    sms = ChannelInfo(name="sms", endpoint_kind="phone", label="SMS", badge="SMS", colour="#000000")
    with pytest.raises(ValueError, match="declared twice"):
        Channels([sms, sms])


def test_every_registered_channel_brings_its_demo_traffic() -> None:
    demos = registry.demos()
    assert set(demos) == set(registry.CHANNELS)  # make run shows every channel
    for package, demo in demos.items():
        assert callable(demo.overrides), package
        assert callable(demo.contact), package
