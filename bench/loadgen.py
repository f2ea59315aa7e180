"""An open-loop HTTP load generator, in a process of its own: requests at a fixed rate, whatever the answers do.

Request ``i`` is due at ``start + i / rate`` and is sent then on an idle keep-alive connection (a new one
when none is idle, up to ``--connections``; past that it waits for one). Its latency runs from when it was
due to the end of its answer, so time spent waiting for a connection or in the server's queue counts
(no coordinated omission). Requests due in the first ``--warmup`` seconds are sent but not counted. HTTP/1.1
is written and read by hand on asyncio streams, to keep the generator's own CPU per request small. Prints
one JSON object: latencies (ms) p50/p90/p99/max, the offered and achieved rates, answers by status, errors,
and the generator's own CPU.

    python bench/loadgen.py --url http://127.0.0.1:8000 --path '/tenants/{slug}' --slugs seed-:10000 \
        --rate 250 --duration 10 [--warmup 2] [--token-file PATH] [--connections 256]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import percentile

REQUEST_TIMEOUT = 10.0


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.usable = True
        self.used = False  # has answered a request: the server may since have closed it as idle

    async def exchange(self, raw: bytes) -> int:
        """Send one request and read its whole answer; returns the status."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and value.strip().lower() == b"close":
                self.usable = False
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        self.used = True
        return status

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class Pool:
    host: str
    port: int
    limit: int
    idle: list[Connection] = field(default_factory=list)
    opened: int = 0
    free: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def take(self) -> Connection:
        async with self.free:
            while not self.idle and self.opened >= self.limit:
                await self.free.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:  # refused, or the request gave up meanwhile
            async with self.free:
                self.opened -= 1
                self.free.notify()
            raise
        return Connection(reader, writer)

    async def give(self, conn: Connection) -> None:
        async with self.free:
            if conn.usable:
                self.idle.append(conn)
            else:
                conn.close()
                self.opened -= 1
            self.free.notify()


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # seconds, counted requests that got an answer
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_due: float | None = None
    last_done: float = 0.0
    answers_all: int = 0  # warm-up included


async def generate(args: argparse.Namespace) -> dict[str, object]:
    target = urlsplit(args.url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    token = args.token_file.read_text().strip() if args.token_file else None
    slug_prefix, _, count = (args.slugs or ":0").rpartition(":")
    slugs = [f"{slug_prefix}{i:06d}" for i in range(int(count or 0))]
    rng = random.Random(args.seed)
    headers = f"Host: {host}:{port}\r\nAccept: application/json\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"

    def raw() -> bytes:
        path = args.path.replace("{slug}", rng.choice(slugs)) if slugs else args.path
        return f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode()

    pool = Pool(host, port, args.connections)
    results = Results()
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    total = int(args.rate * (args.warmup + args.duration))
    start = clock() + 0.2
    counted_from = start + args.warmup
    tasks: set[asyncio.Task[None]] = set()

    async def send(request: bytes) -> int:
        while True:
            conn = await pool.take()
            try:
                status = await conn.exchange(request)
            except asyncio.IncompleteReadError as err:
                conn.usable = False
                await pool.give(conn)
                if not conn.used or err.partial:  # else a kept-alive connection the server closed: retry, as clients do
                    raise
                continue
            except BaseException:
                conn.usable = False
                await pool.give(conn)
                raise
            await pool.give(conn)
            return status

    async def one(due: float) -> None:
        counted = due >= counted_from
        try:
            # The timeout runs from when the request was due: waiting for a connection counts.
            status = await asyncio.wait_for(send(raw()), max(0.001, due + REQUEST_TIMEOUT - clock()))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            if counted:
                key = type(err).__name__
                results.errors[key] = results.errors.get(key, 0) + 1
            return
        done = clock()
        results.answers_all += 1
        if counted:
            results.latencies.append(done - due)
            results.statuses[str(status)] = results.statuses.get(str(status), 0) + 1
            results.first_due = due if results.first_due is None else min(results.first_due, due)
            results.last_done = max(results.last_done, done)

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(total):
        due = start + i / args.rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=REQUEST_TIMEOUT + 5)
    for task in list(tasks):  # none should be left: each gives up REQUEST_TIMEOUT after it was due
        task.cancel()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    for conn in pool.idle:
        conn.close()

    ms = [1000 * t for t in results.latencies]
    window = (results.last_done - results.first_due) if results.first_due is not None else 0.0
    ok = sum(v for k, v in results.statuses.items() if k.startswith("2"))
    own_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "path": args.path,
        "offered_rate": args.rate,
        "duration_seconds": args.duration,
        "counted": len(ms) + sum(results.errors.values()),
        "answered": len(ms),
        "sent": total,
        "answered_all": results.answers_all,
        "achieved_rate": round(ok / window, 1) if window > 0 else 0.0,
        "latency_ms": {
            **{f"p{p}": round(percentile(ms, p), 2) for p in (50, 90, 99) if ms},
            **({"max": round(max(ms), 2), "mean": round(sum(ms) / len(ms), 2)} if ms else {}),
        },
        "statuses": results.statuses,
        "errors": results.errors,
        "connections_opened": pool.opened,
        "generator_cpu_seconds": round(own_cpu, 3),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Open-loop GET load at a fixed rate; prints JSON figures.")
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", required=True, help="path to GET; {slug} is replaced by a random seeded slug")
    parser.add_argument("--slugs", help="PREFIX:COUNT: the slugs {slug} is drawn from (PREFIX000000 ...)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent first and not counted (default 2)")
    parser.add_argument("--connections", type=int, default=256, help="connections at most (default 256)")
    parser.add_argument("--token-file", type=Path, help="a file holding the bearer token to send")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        figures = asyncio.run(generate(args))
    else:
        figures = uvloop.run(generate(args))
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
