"""The sandbox upstreams for a benchmark, in a process of their own: seeded with existing tenants, then served.

Like ``tenantry sandbox`` (authentik with its OIDC issuer, Stalwart and oCIS on loopback), plus what a
benchmark needs: ``--seed N`` tenants' objects put straight into the stores first (see bench/seeding.py),
their ids written to ``--ids-file``, every sandbox adding ``--latency-ms`` to each request, and access tokens
minted by the issuer for a platform admin. When serving, it writes one JSON line to stdout (URLs, the
``Settings`` values pointing at it, which hold its credentials, and the tokens), then serves until SIGTERM,
SIGINT or the end of its stdin.

    python bench/sandbox_proc.py [--seed N] [--prefix P] [--ids-file PATH] [--latency-ms L] [--dkim-delay-ms D]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seeding import MAIL_DOMAIN_BASE, seed_sandboxes, write_ids

UPSTREAMS = ("authentik", "stalwart", "ocis")
TOKEN_SECONDS = 6 * 3600


def _listening_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto says TCP, and
    # with Nagle on, every response written in two parts stalls on the peer's delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from tenantry.sandbox.suite import ADMIN_GROUP, SandboxSuite

    sockets = [_listening_socket() for _ in UPSTREAMS]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    suite = SandboxSuite(
        authentik_url=urls[0], stalwart_url=urls[1], ocis_url=urls[2], dkim_delay=args.dkim_delay_ms / 1000
    )
    began = time.perf_counter()
    ids = seed_sandboxes(suite, args.prefix, args.seed, base=args.mail_domain_base)
    seeded_in = time.perf_counter() - began
    if args.ids_file is not None:
        write_ids(args.ids_file, ids)
    for sandbox in (suite.authentik, suite.stalwart, suite.ocis):
        sandbox.controls.latency_ms = args.latency_ms
    audience = suite.credentials.user_client_id
    tokens = [
        suite.issuer.mint_token(
            sub=f"bench-admin-{n}", groups=[ADMIN_GROUP], audience=audience, expires_in=TOKEN_SECONDS
        )
        for n in range(args.tokens)
    ]

    servers = [
        uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=2048, log_config=None)
        )
        for app in suite.apps().values()
    ]
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in zip(servers, sockets, strict=True)]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            await asyncio.gather(*tasks)
        await asyncio.sleep(0.01)
    ready = {
        "urls": dict(zip(UPSTREAMS, urls, strict=True)),
        "settings": suite.settings(),
        "tokens": tokens,
        "seeded": len(ids),
        "seed_seconds": round(seeded_in, 2),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The parent going away closes our stdin: stop then too, so no sandbox outlives its benchmark.
    loop.add_reader(sys.stdin.fileno(), lambda: None if sys.stdin.readline() else stop.set())
    await stop.wait()
    for server in servers:
        server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve seeded sandbox upstreams for a benchmark.")
    parser.add_argument("--seed", type=int, default=0, help="existing tenants to put into the stores (default 0)")
    parser.add_argument("--prefix", default="seed-", help="slug prefix of the seeded tenants")
    parser.add_argument("--ids-file", type=Path, help="where to write the seeded tenants' upstream ids (JSON)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument("--dkim-delay-ms", type=float, default=0.0, help="time Stalwart takes to make DKIM keys")
    parser.add_argument("--mail-domain-base", default=MAIL_DOMAIN_BASE)
    parser.add_argument("--tokens", type=int, default=1, help="platform-admin access tokens to mint")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # the sandbox's speed is not what is measured; asyncio's own loop will do
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
