"""The deployment files under ``deploy/`` agree with the code.

CI has no Docker and starts no container: this checks the configuration only. The compose
file parses and runs what docs/deploy.md describes; every ``HUB_*`` name it, its env file,
the Dockerfile or the Procfile sets is a setting the hub reads, and the values build the
settings and the app of each process; every command is one the ``hub`` CLI accepts;
nginx balances over exactly the compose file's web processes and upgrades every websocket
path the app serves. Each checker has a companion test on a broken input, so none passes
vacuously.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from sqlalchemy.pool import QueuePool

from agent_console.protocol import HEARTBEAT_S as CONSOLE_HEARTBEAT_S
from channels import registry
from channels.webchat.const import HEARTBEAT_S as CHAT_HEARTBEAT_S
from config.settings import Settings, load_settings
from server.app import create_app
from server.cli import SHUTDOWN_S, build_parser, serve_overrides
from server.demo import provider_overrides
from storage.db import create_engine
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
NGINX = DEPLOY / "nginx.conf"
DOCKERFILE = DEPLOY / "Dockerfile"
PROCFILE = DEPLOY / "Procfile"
# The hub, not nginx, decides when a quiet websocket is dead (its pings); nginx's
# timeouts must be far longer than the slowest heartbeat.
MIN_WS_TIMEOUT_S = 10 * max(CONSOLE_HEARTBEAT_S, CHAT_HEARTBEAT_S)
# Routes nginx deliberately does not publish (scraped per process on the private network).
NOT_PUBLISHED = {"/metrics"}
TRUE = ("1", "true", "yes", "on")


# ------------------------------------------------------------------ settings names


def unknown_settings(env: Iterable[str]) -> list[str]:
    """The ``HUB_*`` names among ``env`` that no setting reads.

    pydantic-settings ignores an environment variable that names no field, so a misspelled
    ``HUB_DATABSE_URL`` would leave the default in place without a word. A nested name
    (``HUB_<FIELD>__<KEY>``) must name a mapping field, and a channel section a channel
    folder; the channel validates the keys of its section itself (``create_app``)."""
    sections = {registry.folder_name(package) for package in registry.CHANNELS}
    unknown = []
    for key in env:
        if not key.startswith("HUB_"):
            continue
        top, _, rest = key.removeprefix("HUB_").lower().partition("__")
        field = Settings.model_fields.get(top)
        if field is None:
            unknown.append(key)
        elif rest and top == "channels":
            if rest.partition("__")[0] not in sections:
                unknown.append(key)
        elif rest and get_origin(field.annotation) is not dict:
            unknown.append(key)
    return unknown


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``HUB_*`` variable of the test run leaks into settings built from a file."""
    for key in list(os.environ):
        if key.startswith("HUB_"):
            monkeypatch.delenv(key)
    return monkeypatch


def settings_from(
    monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], **overrides: object
) -> Settings:
    """The settings a process with this environment builds (as ``hub serve`` does)."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings(require_api_token=True, **overrides)


# ------------------------------------------------------------------ the hub CLI


def hub_command(argv: Sequence[str]) -> argparse.Namespace:
    """``hub ...`` as the hub's own parser reads it; fails the test if it refuses it."""
    if not argv or argv[0] != "hub":
        pytest.fail(f"{list(argv)} does not run the hub command")
    try:
        return build_parser().parse_args(list(argv[1:]))
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is refused by the hub's CLI")


# ------------------------------------------------------------------ files


def read_env_file(path: Path) -> dict[str, str]:
    """A compose env file: ``KEY=VALUE`` lines; single quotes literal, double quotes
    stripped, an unquoted value ends at `` #``. Compose interpolates ``$`` outside single
    quotes, so such a value is refused here rather than changed there."""
    env: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        where = f"{path.name}:{number}"
        assert sep, f"{where}: not KEY=VALUE"
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{where}: {key!r} is no variable name"
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        else:
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].strip()
            assert "$" not in value, f"{where}: a value with '$' must be in single quotes"
        assert key not in env, f"{where}: {key} set twice"
        env[key] = value
    return env


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        name, _, rest = line.partition(" ")
        instructions.append((name.upper(), rest.strip()))
    return instructions


def dockerfile_env(instructions: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The image's ``ENV KEY=VALUE ...`` variables."""
    env: dict[str, str] = {}
    for name, rest in instructions:
        if name == "ENV":
            for pair in shlex.split(rest):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {rest!r}: use KEY=VALUE"
                env[key] = value
    return env


@dataclass(frozen=True, slots=True)
class HubService:
    """A compose service running the hub's image."""

    name: str
    spec: Mapping[str, Any]
    args: argparse.Namespace
    env: Mapping[str, str]

    @property
    def serves(self) -> bool:
        return bool(self.args.command == "serve")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def service_environment(spec: Mapping[str, Any]) -> dict[str, str]:
    """A service's own ``environment`` (map or list form); values must be strings, since
    compose reads a bare ``true`` or ``8080`` differently from the hub."""
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    for key, value in raw.items():
        assert isinstance(value, str), f"environment {key}: quote the value ({value!r})"
    return dict(raw)


def env_file_names(spec: Mapping[str, Any]) -> list[str]:
    raw = spec.get("env_file") or []
    items = [raw] if isinstance(raw, str | dict) else list(raw)
    return [item if isinstance(item, str) else item["path"] for item in items]


def committed_env_file(name: str) -> Path:
    """The committed example of an env file the compose file names (``hub.env`` is the
    site's own copy of ``hub.env.example`` and is not in the repository)."""
    example = DEPLOY / f"{name}.example"
    assert example.is_file(), f"env_file {name}: deploy/{name}.example is missing"
    return example


def hub_services(compose: Mapping[str, Any]) -> list[HubService]:
    """The services built from deploy/Dockerfile, with their whole environment: the
    image's ENV, then the env files, then ``environment`` (compose's precedence)."""
    image_env = dockerfile_env(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))
    found = []
    for name, spec in compose["services"].items():
        build = spec.get("build")
        if not isinstance(build, dict) or build.get("dockerfile") != "deploy/Dockerfile":
            continue
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, f"{name}: build context"
        env = dict(image_env)
        for env_file in env_file_names(spec):
            env.update(read_env_file(committed_env_file(env_file)))
        env.update(service_environment(spec))
        command = spec.get("command")
        assert isinstance(command, list), f"{name}: command in exec form (SIGTERM reaches hub)"
        found.append(HubService(name, spec, hub_command(command), env))
    return found


def serve_settings(service: HubService, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_from(monkeypatch, service.env, **serve_overrides(service.args))


def compose_seconds(value: str) -> float:
    """A compose duration (``30s``, ``1m30s``, ``500ms``)."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    assert "".join(n + u for n, u in parts) == value, f"duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def published_container_ports(spec: Mapping[str, Any]) -> set[int]:
    """Container ports a service publishes (``"25:2525"``, ``"127.0.0.1:25:2525/tcp"``)."""
    ports = set()
    for item in spec.get("ports") or ():
        target = item["target"] if isinstance(item, dict) else str(item).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


# ------------------------------------------------------------------ nginx


@dataclass(frozen=True, slots=True)
class Directive:
    """One nginx directive: its name, arguments and block (None for a simple one)."""

    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] | None = None

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or () if d.name == name]

    def only(self, name: str) -> Directive:
        found = self.children(name)
        assert len(found) == 1, f"expected one {name} in {self.name}, found {len(found)}"
        return found[0]


def _nginx_tokens(text: str) -> list[tuple[str, bool]]:
    """Words and ``{ } ;`` of an nginx file, each with whether it was quoted."""
    tokens: list[tuple[str, bool]] = []
    word = re.compile(r"[^\s{};]+")
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c in "{};":
            tokens.append((c, False))
            i += 1
        elif c in "\"'":
            chars = []
            i += 1
            while text[i] != c:
                if text[i] == "\\":
                    i += 1
                chars.append(text[i])
                i += 1
            tokens.append(("".join(chars), True))
            i += 1
        else:
            match = word.match(text, i)
            assert match is not None
            tokens.append((match.group(), False))
            i = match.end()
    return tokens


def parse_nginx(text: str) -> Directive:
    """The whole file as the block of a directive named ``main``."""
    tokens = _nginx_tokens(text)

    def block(pos: int, nested: bool) -> tuple[tuple[Directive, ...], int]:
        items: list[Directive] = []
        words: list[str] = []
        while pos < len(tokens):
            value, quoted = tokens[pos]
            pos += 1
            if quoted or value not in "{};":
                words.append(value)
            elif value == ";":
                assert words, "empty directive"
                items.append(Directive(words[0], tuple(words[1:])))
                words = []
            elif value == "{":
                assert words, "block without a name"
                inner, pos = block(pos, True)
                items.append(Directive(words[0], tuple(words[1:]), inner))
                words = []
            else:
                assert nested, "unbalanced }"
                assert not words, f"{words}: no ; before }}"
                return tuple(items), pos
        assert not nested, "unterminated block"
        assert not words, f"{words}: no ; at the end"
        return tuple(items), pos

    items, _ = block(0, False)
    return Directive("main", (), items)


def find_location(server: Directive, path: str) -> Directive | None:
    """The location nginx picks for ``path``: an exact match, else the longest prefix if
    it is ``^~``, else the first matching regex, else the longest prefix."""
    prefixes: list[tuple[str, bool, Directive]] = []
    regexes: list[tuple[str, bool, Directive]] = []
    for loc in server.children("location"):
        modifier, pattern = (loc.args[0], loc.args[1]) if len(loc.args) == 2 else ("", loc.args[0])
        if modifier == "=" and pattern == path:
            return loc
        if modifier in ("~", "~*"):
            regexes.append((pattern, modifier == "~*", loc))
        elif modifier in ("", "^~"):
            prefixes.append((pattern, modifier == "^~", loc))
    matching = [p for p in prefixes if path.startswith(p[0])]
    best = max(matching, key=lambda p: len(p[0]), default=None)
    if best is not None and best[1]:
        return best[2]
    for pattern, ignore_case, loc in regexes:
        if re.search(pattern, path, re.IGNORECASE if ignore_case else 0):
            return loc
    return best[2] if best is not None else None


def effective(name: str, *levels: Directive) -> list[tuple[str, ...]]:
    """nginx's inheritance: the innermost level that sets ``name`` at all decides, so a
    location with one ``proxy_set_header`` inherits none of the server's."""
    for level in levels:
        found = [d.args for d in level.children(name)]
        if found:
            return found
    return []


def map_value(http: Directive, variable: str, given: str) -> str | None:
    """What ``map`` sets ``variable`` to when its source variable is ``given``."""
    for m in http.children("map"):
        if m.args[1:] != (variable,):
            continue
        default = ""
        for entry in m.block or ():
            key, value = entry.name, entry.args[0] if entry.args else ""
            if key == "default":
                default = value
            elif key == given or (key.startswith("~") and re.search(key.lstrip("~*"), given)):
                return value
        return default
    return None


def nginx_seconds(value: str) -> float:
    """An nginx time (``60``, ``90s``, ``1h``, ``1m30s``)."""
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    if value.isdigit():
        return float(value)
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", value)
    assert "".join(n + u for n, u in parts) == value, f"nginx time {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def nginx_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match is not None, f"nginx size {value!r}"
    return int(match[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match[2].lower()]


@dataclass(frozen=True, slots=True)
class Nginx:
    http: Directive
    server: Directive
    upstream: Directive

    @classmethod
    def parse(cls, text: str) -> Nginx:
        http = parse_nginx(text).only("http")
        return cls(http, http.only("server"), http.only("upstream"))

    def location(self, path: str) -> tuple[Directive, ...]:
        """The levels a request for ``path`` reads its directives from, innermost first."""
        loc = find_location(self.server, path)
        return () if loc is None else (loc, self.server, self.http)

    def proxy_problems(self, path: str) -> list[str]:
        """Why a request for ``path`` would not reach the hub properly (empty: it would)."""
        levels = self.location(path)
        if not levels:
            return [f"{path}: no location serves it"]
        problems = []
        upstream = self.upstream.args[0]
        if effective("proxy_pass", levels[0]) != [(f"http://{upstream}",)]:
            problems.append(f"{path}: not proxied (as sent, no URI part) to {upstream}")
        if effective("proxy_http_version", *levels) != [("1.1",)]:
            problems.append(f"{path}: proxy_http_version is not 1.1")
        headers = {args[0].lower(): args[1] for args in effective("proxy_set_header", *levels)}
        for header in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"):
            if header not in headers:
                problems.append(f"{path}: {header} not set")
        if self.upstream.children("keepalive") and "connection" not in headers:
            problems.append(f"{path}: keepalive upstream needs the Connection header cleared")
        return problems

    def websocket_problems(self, path: str) -> list[str]:
        """``proxy_problems`` plus what a websocket needs: the upgrade handshake passed on,
        and timeouts far longer than the hub's heartbeats."""
        problems = self.proxy_problems(path)
        levels = self.location(path)
        if not levels:
            return problems
        headers = {args[0].lower(): args[1] for args in effective("proxy_set_header", *levels)}
        if headers.get("upgrade") != "$http_upgrade":
            problems.append(f"{path}: Upgrade is not passed on ($http_upgrade)")
        connection = headers.get("connection", "")
        if connection.startswith("$"):
            connection = map_value(self.http, connection, "websocket") or ""
        if connection.lower() != "upgrade":
            problems.append(f"{path}: Connection is not 'upgrade' for a websocket handshake")
        for name in ("proxy_read_timeout", "proxy_send_timeout"):
            found = effective(name, *levels)
            seconds = nginx_seconds(found[0][0]) if found else 60.0
            if seconds < MIN_WS_TIMEOUT_S:
                problems.append(f"{path}: {name} {seconds:.0f} s < {MIN_WS_TIMEOUT_S:.0f} s")
        return problems


def routes(app: web.Application) -> set[str]:
    return {route.resource.canonical for route in app.router.routes() if route.resource is not None}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> list[HubService]:
    return hub_services(compose)


@pytest.fixture
def serving(
    services: list[HubService], clean_env: pytest.MonkeyPatch
) -> list[tuple[HubService, Settings]]:
    """Each ``hub serve`` service with the settings it starts with."""
    return [(s, serve_settings(s, clean_env)) for s in services if s.serves]


@pytest.fixture(scope="module")
def nginx() -> Nginx:
    return Nginx.parse(NGINX.read_text(encoding="utf-8"))


def web_services(serving: list[tuple[HubService, Settings]]) -> list[tuple[HubService, Settings]]:
    return [(s, settings) for s, settings in serving if settings.role == "web"]


# ------------------------------------------------------------------ compose


def test_compose_runs_databases_migrate_two_web_processes_a_worker_and_nginx(
    compose: dict[str, Any], serving: list[tuple[HubService, Settings]]
) -> None:
    names = compose["services"]
    assert str(names["postgres"]["image"]).startswith("postgres:16")
    assert str(names["redis"]["image"]).startswith("redis:7")
    assert str(names["nginx"]["image"]).startswith("nginx")
    assert names["migrate"]["command"] == ["hub", "migrate"]
    assert names["migrate"]["restart"] == "no"
    roles = Counter(settings.role for _, settings in serving)
    assert roles == {"web": 2, "worker": 1}, roles
    for service, _ in serving:
        assert service.spec["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, service.name


def test_every_hub_variable_is_a_setting_and_builds_each_process(
    services: list[HubService], serving: list[tuple[HubService, Settings]]
) -> None:
    assert services, "no service runs the hub's image"
    for service in services:
        assert unknown_settings(service.env) == [], service.name
    for service, settings in serving:
        # Every channel validates its own section (a misspelled key stops the hub here).
        app = create_app(settings)
        assert "/readyz" in routes(app), service.name


def test_a_misspelled_setting_name_is_caught() -> None:
    good = {
        "HUB_DATABASE_URL": "postgresql://hub@db/hub",
        "HUB_CHANNELS__WEBCHAT__SITES__SHOP__QUEUE": "support",
        "HUB_EMAIL_MAILBOXES__SUPPORT": "support",
        "POSTGRES_PASSWORD": "not a hub setting, not checked",
    }
    assert unknown_settings(good) == []
    bad = [
        "HUB_DATABSE_URL",
        "HUB_CHANNELS__WEBCHATT__SITES__SHOP__QUEUE",
        "HUB_HTTP_PORT__NUMBER",
    ]
    assert unknown_settings({**good, **dict.fromkeys(bad, "x")}) == bad


def test_a_misspelled_key_in_a_channel_section_stops_the_app(
    services: list[HubService], clean_env: pytest.MonkeyPatch
) -> None:
    web_service = next(s for s in services if s.serves and s.args.role == "web")
    env = {**web_service.env, "HUB_CHANNELS__WEBCHAT__SITES__SHOP__QUEUES": "support"}
    settings = settings_from(clean_env, env, **serve_overrides(web_service.args))
    with pytest.raises(Exception, match="queues"):
        create_app(settings)


def test_a_role_the_hub_does_not_know_is_refused() -> None:
    assert hub_command(["hub", "serve", "--role", "worker"]).role == "worker"
    with pytest.raises(pytest.fail.Exception, match="refused"):
        hub_command(["hub", "serve", "--role", "router"])


def test_hub_processes_share_one_postgres_and_one_redis(
    compose: dict[str, Any], services: list[HubService], clean_env: pytest.MonkeyPatch
) -> None:
    postgres = compose["services"]["postgres"]
    pg_env: dict[str, str] = {}
    for env_file in env_file_names(postgres):
        pg_env.update(read_env_file(committed_env_file(env_file)))
    pg_env.update(service_environment(postgres))
    urls = set()
    for service in services:
        settings = settings_from(
            clean_env, service.env, **(serve_overrides(service.args) if service.serves else {})
        )
        url = urlsplit(settings.database_url)
        assert url.scheme == "postgresql+asyncpg", service.name
        assert url.hostname == "postgres", service.name
        assert url.username == pg_env.get("POSTGRES_USER", "postgres"), service.name
        assert url.password == pg_env["POSTGRES_PASSWORD"], service.name
        assert url.path == "/" + pg_env.get("POSTGRES_DB", url.username or ""), service.name
        urls.add(settings.database_url)
        if service.serves:
            redis = urlsplit(settings.redis_url)
            assert redis.hostname in compose["services"], f"{service.name}: {redis.hostname}"
            assert "redis" in str(compose["services"][redis.hostname]["image"])
            urls.add(f"{settings.redis_url} {settings.redis_prefix}")
    assert len(urls) == 2, urls  # one database, one Redis and key prefix for all


def test_serving_processes_are_checked_on_readyz_and_drain_before_they_are_killed(
    serving: list[tuple[HubService, Settings]],
) -> None:
    for service, settings in serving:
        test = service.spec["healthcheck"]["test"]
        urls = [u for part in test for u in re.findall(r"https?://[^'\" ]+", part)]
        assert len(urls) == 1, f"{service.name}: {test}"
        url = urlsplit(urls[0])
        assert (url.path, url.port) == ("/readyz", settings.http_port), service.name
        # Reachable from nginx and the other containers, not only from inside.
        assert settings.http_host in ("0.0.0.0", "::", ""), service.name
        grace = compose_seconds(service.spec["stop_grace_period"])
        assert grace > SHUTDOWN_S, f"{service.name}: docker kills before the hub drained"
        assert service.spec.get("init") is True, f"{service.name}: SIGTERM forwarding"


def test_postgres_allows_every_process_its_whole_pool(
    compose: dict[str, Any], services: list[HubService]
) -> None:
    command = compose["services"]["postgres"]["command"]
    options = dict(command[i + 1].split("=", 1) for i, word in enumerate(command) if word == "-c")
    engine = create_engine("postgresql+asyncpg://hub@postgres/hub")
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    per_process = pool.size() + pool._max_overflow
    # Every service at its pool's limit, plus one `hub` command and PostgreSQL's reserve.
    needed = (len(services) + 1) * per_process + 3
    assert int(options.get("max_connections", "100")) >= needed, options
    assert options.get("synchronous_commit", "on") not in ("off", "local"), options


def test_only_one_worker_takes_mail_and_publishes_its_smtp_port(
    serving: list[tuple[HubService, Settings]],
) -> None:
    takers = [(s, settings) for s, settings in serving if settings.smtp_enabled]
    assert [settings.role for _, settings in takers] == ["worker"], [s.name for s, _ in takers]
    service, settings = takers[0]
    assert settings.smtp_host == "0.0.0.0"
    assert settings.smtp_port in published_container_ports(service.spec)
    for other, _ in serving:
        if other is not service:
            assert not published_container_ports(other.spec), other.name


def test_databases_are_not_published(compose: dict[str, Any]) -> None:
    for name in ("postgres", "redis"):
        assert not compose["services"][name].get("ports"), name


# ------------------------------------------------------------------ nginx


def test_nginx_balances_over_exactly_the_web_processes(
    compose: dict[str, Any], serving: list[tuple[HubService, Settings]], nginx: Nginx
) -> None:
    webs = web_services(serving)
    expected = {f"{service.name}:{settings.http_port}" for service, settings in webs}
    listed = {d.args[0] for d in nginx.upstream.children("server")}
    assert listed == expected
    # Sticky-free: any process serves any request.
    for sticky in ("ip_hash", "hash", "sticky", "least_conn"):
        assert not nginx.upstream.children(sticky), sticky
    spec = compose["services"]["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in spec["volumes"]
    assert spec["depends_on"] == {
        service.name: {"condition": "service_healthy"} for service, _ in webs
    }


def test_nginx_upgrades_every_websocket_path_the_app_serves(
    serving: list[tuple[HubService, Settings]], nginx: Nginx, tmp_path: Path
) -> None:
    # Every channel configured (the demo's settings), and the compose web process itself.
    everything = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", **provider_overrides())
    paths = routes(create_app(everything))
    for _, settings in web_services(serving):
        paths |= routes(create_app(settings))
    sockets = sorted(p for p in paths if p.startswith("/ws/"))
    assert sockets, "the app serves no websocket path"
    for path in sockets:
        assert nginx.websocket_problems(path) == [], path


def test_a_websocket_location_without_the_upgrade_headers_is_caught() -> None:
    text = NGINX.read_text(encoding="utf-8")
    broken = Nginx.parse(
        text.replace("proxy_set_header Upgrade $http_upgrade;", "").replace(
            "proxy_read_timeout 1h;", "proxy_read_timeout 60s;"
        )
    )
    problems = broken.websocket_problems("/ws/agent")
    assert any("Upgrade" in p for p in problems), problems
    assert any("proxy_read_timeout" in p for p in problems), problems
    no_location = Nginx.parse(re.sub(r"location /ws/ \{[^}]*\}", "", text))
    assert any("Connection" in p for p in no_location.websocket_problems("/ws/agent"))


def test_nginx_proxies_every_other_route_with_forwarded_headers(
    serving: list[tuple[HubService, Settings]], nginx: Nginx
) -> None:
    paths: set[str] = set()
    for _, settings in web_services(serving):
        paths |= routes(create_app(settings))
    assert "/webhooks/telegram" in paths or "/api/v1/inbound" in paths
    for path in sorted(paths):
        if path.startswith("/ws/"):
            continue
        if path in NOT_PUBLISHED:
            levels = nginx.location(path)
            assert levels, path
            assert effective("return", levels[0]) == [("404",)], path
            continue
        assert nginx.proxy_problems(path) == [], path


def test_nginx_refuses_the_same_bodies_as_the_hub(
    serving: list[tuple[HubService, Settings]], nginx: Nginx
) -> None:
    limits = {settings.max_body_bytes for _, settings in web_services(serving)}
    assert len(limits) == 1, limits
    found = effective("client_max_body_size", nginx.server, nginx.http)
    assert found, "client_max_body_size not set (nginx's default is 1m)"
    assert nginx_bytes(found[0][0]) == limits.pop()


# ------------------------------------------------------------------ image and Procfile


def test_image_is_python_311_with_the_pinned_package_running_hub_serve() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    bases = [rest.split()[0] for name, rest in instructions if name == "FROM"]
    assert bases, "no FROM"
    assert bases[-1].startswith("python:3.11"), bases
    runs = " && ".join(rest for name, rest in instructions if name == "RUN")
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", runs), runs
    cmd = [rest for name, rest in instructions if name == "CMD"]
    assert len(cmd) == 1
    assert hub_command(json.loads(cmd[0])).command == "serve"
    assert unknown_settings(dockerfile_env(instructions)) == []


def procfile() -> Iterator[tuple[str, dict[str, str], argparse.Namespace]]:
    """``(process, its variables, its hub command)`` per line."""
    for raw in PROCFILE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, sep, command = raw.partition(":")
        assert sep, raw
        assert re.fullmatch(r"[a-z0-9_]+", name), raw
        words = shlex.split(command)
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        yield name, env, hub_command(words)


def test_procfile_runs_the_roles_of_the_compose_file(
    serving: list[tuple[HubService, Settings]],
) -> None:
    lines = list(procfile())
    assert Counter(args.role for _, _, args in lines) == Counter(
        settings.role for _, settings in serving
    )
    ports = [args.port for _, _, args in lines]
    assert None not in ports, ports
    assert len(set(ports)) == len(ports), ports
    for name, env, _ in lines:
        assert unknown_settings(env) == [], name
    # One machine, one SMTP port: only the worker binds it (it is on by default).
    takers = [
        args.role for _, env, args in lines if env.get("HUB_SMTP_ENABLED", "true").lower() in TRUE
    ]
    assert takers == ["worker"], takers
