"""Email ingest over real SMTP: mails per second stored and threaded, against django-helpdesk.

The corpus is real-shaped customer mail (``channels.email.testing.simulator``): new threads,
replies that carry In-Reply-To and References (some only References), out-of-office
auto-replies, redeliveries of the same Message-ID, GBK, Windows-1252, HTML,
quoted-printable and attachments. Ours: the hub (one process, fresh SQLite) receives it on its
SMTP port from a client in a separate process with several connections; a mail counts when
the hub answered 250, which it does only after storing and threading it. The peer:
django-helpdesk's own mail processing (``extract_email_metadata``, what its ``get_email``
command runs for each mail) over the same corpus in a throwaway virtualenv under
``benchmarks/peers/.venv``, timed in-process with no transport at all (which favours it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from benchmarks.procs import ROOT, hub_process
from channels.email.testing.simulator import random_customer_mail
from contract.testing import free_port

MAILBOX = "support@shop.example"
PEERS = Path(__file__).with_name("peers")
PEER_VENV = PEERS / ".venv"
PEER_PACKAGE = "django-helpdesk[teams]==2.6.1"
_MSG_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE | re.IGNORECASE)

SENDER = """
import asyncio, json, pickle, sys, time
import aiosmtplib

corpus = pickle.load(open(sys.argv[1], "rb"))
host, port, conns = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def worker(items, failures):
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=60)
    async with client:
        for raw, sender, rcpt in items:
            options = [] if raw.isascii() else ["BODY=8BITMIME"]
            try:
                await client.sendmail(sender, [rcpt], raw, mail_options=options)
            except aiosmtplib.SMTPException as err:
                failures.append(str(err)[:200])

async def main():
    failures = []
    shards = [corpus[i::conns] for i in range(conns)]
    start = time.perf_counter()
    await asyncio.gather(*(worker(s, failures) for s in shards))
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "failures": len(failures), "first": failures[:3]}))

asyncio.run(main())
"""


def corpus(n: int, seed: int = 7) -> list[tuple[bytes, str, str]]:
    """``n`` mails (raw, envelope sender, recipient) in the order customers send them."""
    rng = random.Random(seed)
    people = [
        (f"Customer {i}", f"customer{i}@example-{i % 17}.org") for i in range(max(10, n // 8))
    ]
    threads: list[tuple[tuple[str, str], str, list[str]]] = []  # (who, subject, ids)
    out: list[tuple[bytes, str, str]] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.04:
            out.append(rng.choice(out))  # redelivered: the same Message-ID again
            continue
        if threads and roll < 0.34:
            who, subject, ids = rng.choice(threads)
            raw = random_customer_mail(
                rng, MAILBOX, customer=who, subject=subject, in_reply_to=ids[-1], references=ids
            )
            if roll < 0.09:  # some clients keep only References
                raw = re.sub(rb"\r\nIn-Reply-To: [^\r]*", b"", raw, count=1)
        else:
            who = rng.choice(people)
            raw = random_customer_mail(rng, MAILBOX, customer=who)
            subject = raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
            threads.append((who, subject, []))
            ids = threads[-1][2]
        found = _MSG_ID.search(raw)
        if found:
            ids.append(found.group(1).decode())
        if rng.random() < 0.05:  # an out-of-office answer to our acknowledgement
            raw = raw.replace(
                b"\r\nSubject: ",
                b"\r\nAuto-Submitted: auto-replied\r\nSubject: Automatic reply: ",
                1,
            )
        out.append((raw, who[1], MAILBOX))
    return out


async def ours(mails: list[tuple[bytes, str, str]], connections: int) -> dict[str, Any]:
    port = free_port()
    env = {
        "HUB_SMTP_ENABLED": "true",
        "HUB_SMTP_PORT": str(port),
        "HUB_EMAIL_MAILBOXES": json.dumps({MAILBOX: "support"}),
        "HUB_RELAY_PORT": str(free_port()),  # replies are not sent in this benchmark
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.pickle"
        path.write_bytes(pickle.dumps(mails))
        async with hub_process(env):
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", SENDER, str(path), "127.0.0.1", str(port), str(connections)],
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
    sent = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "mails": len(mails),
        "seconds": round(sent["seconds"], 3),
        "per_s": round(len(mails) / sent["seconds"], 1),
        "failures": sent["failures"],
        "connections": connections,
        "transport": "SMTP from a separate process",
    }


def _peer_python() -> Path | None:
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PEER_PACKAGE], check=True, timeout=600
        )
    except (subprocess.SubprocessError, OSError) as err:
        print(f"[mail] could not install {PEER_PACKAGE}: {err}", file=sys.stderr)
        return None
    return python


def peer(mails: list[tuple[bytes, str, str]]) -> dict[str, Any]:
    python = _peer_python()
    if python is None:
        return {"skipped": f"{PEER_PACKAGE} could not be installed"}
    with tempfile.TemporaryDirectory() as tmp:
        mail_dir, work = Path(tmp) / "mail", Path(tmp) / "work"
        mail_dir.mkdir()
        work.mkdir()
        for i, (raw, _, _) in enumerate(mails):
            (mail_dir / f"{i:06d}.eml").write_bytes(raw)
        done = subprocess.run(
            [str(python), str(PEERS / "helpdesk_run.py"), str(mail_dir), str(work)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    if done.returncode != 0:
        return {"skipped": f"the peer failed: {done.stderr[-500:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["transport"] = "none (in-process, files read before timing)"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench mail", description=__doc__)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-peer", action="store_true", help="skip django-helpdesk")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mails = corpus(args.mails)
    started = time.time()
    result: dict[str, Any] = {
        "corpus": {"mails": len(mails), "seed": 7},
        "hub": asyncio.run(ours(mails, args.connections)),
    }
    if not args.no_peer:
        result["peer"] = {"name": "django-helpdesk", **peer(mails)}
        per_s = result["peer"].get("per_s")
        if per_s:
            result["ratio"] = round(result["hub"]["per_s"] / per_s, 2)
    result["target"] = "hub >= 10x django-helpdesk's mail processing"
    result["runtime_s"] = round(time.time() - started, 1)
    path = write_result("mail", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        hub = result["hub"]
        line = f"hub {hub['per_s']} mails/s over SMTP ({hub['failures']} refused)"
        if "ratio" in result:
            line += f"; django-helpdesk {result['peer']['per_s']}/s; ratio {result['ratio']}"
        print(f"{line}; written to {path}")
    return 0
