"""The interaction hub: domain services, the interaction stream, app wiring and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("interaction-hub")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
