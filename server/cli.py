"""The ``hub`` command: serve, migrate, seed demo data, manage users, simulate, benchmark."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from channels import registry
from contract.errors import ConfigError, HubError
from hub import __version__

if TYPE_CHECKING:
    from aiohttp import web

    from config.settings import Settings

ROLES = ("web", "worker", "all")
SHUTDOWN_S = 20.0
PROTOCOL_DOC = Path(__file__).resolve().parents[1] / "agent_console" / "PROTOCOL.md"
PASSTHROUGH: dict[str, tuple[str, str]] = {
    # command: (module with main(argv), one-line help)
    "simulate": ("routing.sim", "simulate the router on simulated time and compare with Erlang C"),
    "bench": ("benchmarks.cli", "run a benchmark suite (hub bench --help lists them)"),
}
# Each channel's own subcommand (``hub telegram ...``), from the registry; it gets the
# settings loader as its second argument.
CHANNEL_COMMANDS: dict[str, tuple[str, str]] = registry.commands()


def _settings(*, serving: bool = False, **overrides: object) -> Settings:
    from config.settings import load_settings

    return load_settings(require_api_token=serving, **overrides)


def serve_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings ``hub serve``'s options override."""
    overrides: dict[str, object] = {}
    if args.host:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if args.role:
        overrides["role"] = args.role
    return overrides


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the hub until interrupted."""
    from aiohttp import web

    from server.app import create_app

    overrides = serve_overrides(args)
    demo_providers = args.traffic and os.environ.get("HUB_DEMO", "").lower() in ("1", "true")
    if demo_providers:
        from server.demo import provider_overrides

        overrides.update(provider_overrides())
    settings = _settings(serving=True, **overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiosmtpd logs every SMTP command of every session at INFO, eleven lines a mail; what
    # became of each mail is in its events and /metrics. The SMTP chatter shows at DEBUG.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    app = create_app(settings)
    if demo_providers:
        from server.demo import providers_ctx

        app.cleanup_ctx.insert(0, providers_ctx)
    if args.traffic:
        from server.demo import traffic_ctx

        app.cleanup_ctx.append(traffic_ctx(rate=args.traffic_rate))

    async def announce(_app: web.Application) -> None:
        # Only once every resource opened: a refused start prints its one error line alone.
        print(
            f"hub {__version__} listening on http://{settings.http_host}:{settings.http_port}"
            f" (role {settings.role})"
        )
        base = settings.public_url
        print(f"  console:    {base}/console   supervisor: {base}/supervisor   login: {base}/login")
        print(f"  API docs:   {base}/api/openapi.json   health: {base}/healthz")
        if settings.demo:
            print("  demo mode (not for real traffic): logins agent1..agent6 / supervisor / admin,")
            print(f"  password 'demo-pass', API token {settings.api_token_value()}")
        sys.stdout.flush()

    app.on_startup.append(announce)
    app.on_startup.append(_freeze_heap)
    # SIGTERM: consoles and visitors are told to reconnect elsewhere, then requests in flight
    # get up to SHUTDOWN_S to finish, then the loops stop and the router lease is released.
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_S,
    )
    return 0


async def _freeze_heap(_app: web.Application) -> None:
    """Leave what startup built (modules, mappers, compiled statements, routing state) out
    of every later garbage collection: a full collection of the whole heap stopped the loop
    for 100+ ms, a pause every connected console would feel. Only a serving process does
    this; objects created afterwards are collected as usual."""
    gc.collect()
    gc.freeze()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema."""
    from config.settings import redact_url
    from storage.db import migrate_sync

    settings = _settings()
    migrate_sync(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}: {redact_url(settings.database_url)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed demo teams, queues, agents and customers (idempotent; needs HUB_DEMO=true)."""
    settings = _settings()
    if args.deactivate:
        from server.demo import deactivate_demo_accounts

        names = asyncio.run(deactivate_demo_accounts(settings))
        print(f"deactivated {len(names)} demo accounts{': ' + ', '.join(names) if names else ''}")
        return 0
    from server.demo import seed

    summary = asyncio.run(seed(settings))
    print(summary)
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create an agent, supervisor or admin account."""
    from server.demo import create_user

    password = args.password or os.environ.get("HUB_NEW_USER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise ConfigError("no password: pass --password or set HUB_NEW_USER_PASSWORD")
        password = getpass.getpass(f"password for {args.username}: ")
    settings = _settings()
    agent_id = asyncio.run(
        create_user(
            settings,
            username=args.username,
            password=password,
            role=args.role,
            display_name=args.name or args.username,
            skills=dict(_skill(s) for s in args.skill),
        )
    )
    print(f"created {args.role} {args.username!r} (id {agent_id})")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Integration API tokens: scoped (inbound, read, reports, admin), stored hashed, shown
    once at creation, revocable. HUB_API_TOKEN stays the bootstrap admin token."""
    from hub.services import Hub
    from storage.db import create_engine

    settings = _settings()

    async def run() -> int:
        hub = Hub(settings, create_engine(settings.database_url), channels=registry.channels())
        try:
            if args.action == "create":
                if not args.name_or_id or not args.scope:
                    raise ConfigError("token create needs a NAME and at least one --scope")
                token_id, secret = await hub.tokens.create(
                    name=args.name_or_id, scopes=args.scope, created_by="cli"
                )
                print(f"token {token_id} {args.name_or_id!r} ({', '.join(sorted(args.scope))}):")
                print(secret)
                print("store it now: it is not shown again (only its hash is kept)")
            elif args.action == "list":
                for row in await hub.tokens.list():
                    state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                    used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                    print(f"{row.id}\t{row.name}\t{','.join(row.scopes)}\t{state}\tused {used}")
            else:
                if not (args.name_or_id or "").isdigit():
                    raise ConfigError("token revoke needs the token's id (see `hub token list`)")
                row = await hub.tokens.revoke(int(args.name_or_id), actor="cli")
                print(f"revoked token {row.id} {row.name!r}")
            return 0
        finally:
            await hub.engine.dispose()

    return asyncio.run(run())


def _skill(spec: str) -> tuple[str, float]:
    name, _, level = spec.partition("=")
    try:
        return name.strip(), float(level or "3")
    except ValueError:
        raise ConfigError(f"--skill {spec!r}: expected NAME=LEVEL, e.g. billing=4") from None


def cmd_events_doc(args: argparse.Namespace) -> int:
    """Write the event table of agent_console/PROTOCOL.md from hub/events.py (or --check it)."""
    from hub.events import with_doc_table

    path = Path(args.path)
    text = path.read_text(encoding="utf-8")
    fresh = with_doc_table(text)
    if args.check:
        if fresh != text:
            print(f"{path}: the event table is out of date; run `hub events-doc`")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    print(f"{path}: event table written")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description="Omnichannel contact-center hub. Settings come from config/default.toml "
        "and HUB_* environment variables (e.g. HUB_DATABASE_URL, HUB_API_TOKEN).",
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "serve", help="run the hub (HTTP, websockets, SMTP)", description=cmd_serve.__doc__
    )
    p.add_argument("--host", help="listen address (default HUB_HTTP_HOST)")
    p.add_argument("--port", type=int, help="listen port (default HUB_HTTP_PORT)")
    p.add_argument(
        "--role",
        choices=ROLES,
        help="what this process runs: web (webhooks, API, console and chat sockets), worker"
        " (router, outbox, media, rollups) or all (default HUB_ROLE, all); several processes"
        " need HUB_REDIS_URL and PostgreSQL (docs/deploy.md)",
    )
    p.add_argument("--traffic", action="store_true", help="also send simulated demo traffic")
    p.add_argument("--traffic-rate", type=float, default=0.5, help="demo contacts per second")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "migrate", help="create or upgrade the database schema", description=cmd_migrate.__doc__
    )
    p.add_argument("--revision", default="heads", help="target revision (default: all heads)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "demo",
        help="seed demo teams, agents, queues, customers (HUB_DEMO=true only)",
        description=cmd_demo.__doc__,
    )
    p.add_argument(
        "--deactivate",
        action="store_true",
        help="deactivate the demo logins instead (before serving real traffic)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "create-user",
        help="create an agent, supervisor or admin",
        description=cmd_create_user.__doc__,
    )
    p.add_argument("username")
    p.add_argument("--role", choices=("agent", "supervisor", "admin"), default="agent")
    p.add_argument("--name", help="display name")
    p.add_argument("--password", help="password (else HUB_NEW_USER_PASSWORD or a prompt)")
    p.add_argument(
        "--skill",
        action="append",
        default=[],
        metavar="NAME=LEVEL",
        help="skill with proficiency 0-5; repeatable",
    )
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser(
        "token", help="create, list or revoke integration API tokens", description=cmd_token.__doc__
    )
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("name_or_id", nargs="?", help="the new token's name, or the id to revoke")
    p.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=("inbound", "read", "reports", "admin"),
        help="what the token may do; repeatable (create)",
    )
    p.set_defaults(func=cmd_token)

    p = sub.add_parser(
        "events-doc",
        help="write PROTOCOL.md's event table from hub/events.py",
        description=cmd_events_doc.__doc__,
    )
    p.add_argument("--check", action="store_true", help="only check it is up to date")
    p.add_argument("path", nargs="?", default=str(PROTOCOL_DOC), help="the protocol document")
    p.set_defaults(func=cmd_events_doc)

    for name, (module, help_) in {**PASSTHROUGH, **CHANNEL_COMMANDS}.items():
        p = sub.add_parser(name, help=help_, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_passthrough(module, channel=name in CHANNEL_COMMANDS))
    return parser


def _passthrough(module: str, *, channel: bool = False) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise ConfigError(f"this command is not available in this build ({err.name})") from None
        result: int = mod.main(args.rest, _settings) if channel else mod.main(args.rest)
        return result

    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hub`` console script."""
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else argv
    if raw and raw[0] in PASSTHROUGH | CHANNEL_COMMANDS:
        # Hand the rest over untouched (argparse would eat the sub-command's own --help).
        module = (PASSTHROUGH | CHANNEL_COMMANDS)[raw[0]][0]
        run = _passthrough(module, channel=raw[0] in CHANNEL_COMMANDS)
        args = argparse.Namespace(func=run, rest=raw[1:])
    else:
        args = parser.parse_args(raw)
    try:
        return int(args.func(args))
    except HubError as err:
        print(f"hub: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
