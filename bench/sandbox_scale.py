"""Sandbox scale benchmark: CPU per request of each simulator holding 1,000, 10,000 and 100,000 tenants.

Each simulator (authentik, Stalwart, oCIS) is filled in this process through its own store API with every
tenant's objects, then answers the requests the product sends, in process through ``httpx.ASGITransport``.
The figure is ``time.process_time()`` over those requests divided by their number (client and transport
included, so it is an upper bound of the simulator's own share). A flat figure from the smallest to the
largest size means no request scans the store. See bench/README.md.

    .venv/bin/python bench/sandbox_scale.py [--sizes 1000,10000,100000] [--requests N] [--budget S]
                                            [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tenantry.sandbox.authentik import AuthentikSandbox
from tenantry.sandbox.ocis import OcisSandbox
from tenantry.sandbox.stalwart import StalwartSandbox

TOKEN = "bench-token"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
DOMAIN_PROPERTIES = ["id", "name", "aliases", "isEnabled", "description", "dkimManagement"]
DKIM_PROPERTIES = ["id", "@type", "domainId", "selector", "stage", "publicKey"]
PROJECTS = {"$filter": "driveType eq 'project'"}

# One request of a kind, given a fresh number (for names that must be new) and a random generator.
Request = Callable[[int, random.Random], Awaitable[httpx.Response]]


def slug(n: int) -> str:
    return f"tenant-{n:06d}"


def tenant_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@dataclass
class Kind:
    """A request the product sends: what it is called, how to send it, and the status it must get."""

    label: str
    send: Request
    status: int
    items: Callable[[int], int] = lambda _size: 1  # objects in one answer (a full listing: all of them)


@dataclass
class Result:
    upstream: str
    request: str
    size: int
    requests: int
    cpu_seconds: float
    cpu_per_request_us: float
    items_per_answer: int
    fill_seconds: float


@dataclass
class Report:
    started_at: str
    sizes: list[int]
    load_average_start: list[float]
    load_average_end: list[float] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0


# -- authentik ---------------------------------------------------------------------------------------------


def fill_authentik(size: int) -> AuthentikSandbox:
    """Per tenant: its group, marked with the attributes the product sets, and its owner as a member."""
    sandbox = AuthentikSandbox([TOKEN], max_page_size=100)
    directory = sandbox.directory
    for n in range(size):
        owner = directory.add_user(f"owner-{n}", name=f"Owner {n}", email=f"owner-{n}@example.test")
        attributes = {"tenant_slug": slug(n), "tenant_id": tenant_id(n), "managed_by": "tenantry"}
        directory.insert_group({"name": f"tenantry-{slug(n)}", "attributes": attributes, "users": [owner]})
    return sandbox


def authentik_kinds(_sandbox: AuthentikSandbox, http: httpx.AsyncClient, size: int) -> list[Kind]:
    groups = "/api/v3/core/groups/"
    lean = {"include_users": "false", "page_size": "100", "page": "1"}

    async def by_name(_: int, rng: random.Random) -> httpx.Response:
        return await http.get(groups, params={**lean, "name": f"tenantry-{slug(rng.randrange(size))}"})

    async def by_marker(_: int, rng: random.Random) -> httpx.Response:
        wanted = json.dumps({"tenant_id": tenant_id(rng.randrange(size))}, separators=(",", ":"))
        return await http.get(groups, params={**lean, "attributes": wanted})

    async def managed_page(_: int, rng: random.Random) -> httpx.Response:
        page = str(1 + rng.randrange(max(1, size // 100)))
        return await http.get(groups, params={**lean, "attributes": '{"managed_by":"tenantry"}', "page": page})

    async def create(fresh: int, _: random.Random) -> httpx.Response:
        attributes = {"tenant_slug": f"new-{fresh}", "tenant_id": f"new-{fresh}", "managed_by": "tenantry"}
        body = {"name": f"tenantry-new-{fresh}", "attributes": attributes}
        return await http.post(groups, params={"include_users": "false"}, json=body)

    return [
        Kind("group by name", by_name, 200),
        Kind("groups by marker attribute", by_marker, 200),
        Kind("page of 100, managed_by filter", managed_page, 200, lambda _size: 100),
        Kind("create group", create, 201),
    ]


# -- Stalwart ----------------------------------------------------------------------------------------------


def fill_stalwart(size: int) -> StalwartSandbox:
    """Per tenant: its mail domain (DKIM Automatic, as the product creates it) and the two keys generated."""
    sandbox = StalwartSandbox(api_keys=[TOKEN], fast_dkim=True)
    store = sandbox.store
    for n in range(size):
        description = f"Tenantry tenant {slug(n)} [tenantry:{tenant_id(n)}]"
        store.create("Domain", {"name": f"{slug(n)}.mail.example.test", "description": description}, str)
    store.tick()  # every domain's keys are due at once (no delay)
    return sandbox


def stalwart_kinds(sandbox: StalwartSandbox, http: httpx.AsyncClient, size: int) -> list[Kind]:
    domain_ids = list(sandbox.store.tables["Domain"])

    async def jmap(*calls: list[Any]) -> httpx.Response:
        return await http.post("/jmap/", json={"using": USING, "methodCalls": list(calls)})

    async def domain_by_name(_: int, rng: random.Random) -> httpx.Response:
        name = f"{slug(rng.randrange(size))}.mail.example.test"
        ids = {"resultOf": "q", "name": "x:Domain/query", "path": "/ids"}
        return await jmap(
            ["x:Domain/query", {"filter": {"name": name}}, "q"],
            ["x:Domain/get", {"#ids": ids, "properties": DOMAIN_PROPERTIES}, "g"],
        )

    async def domain_with_keys(_: int, rng: random.Random) -> httpx.Response:
        domain_id = domain_ids[rng.randrange(size)]
        ids = {"resultOf": "q", "name": "x:DkimSignature/query", "path": "/ids"}
        return await jmap(
            ["x:DkimSignature/query", {"filter": {"domainId": domain_id}}, "q"],
            ["x:DkimSignature/get", {"#ids": ids, "properties": DKIM_PROPERTIES}, "k"],
            ["x:Domain/get", {"ids": [domain_id], "properties": [*DOMAIN_PROPERTIES, "dnsZoneFile"]}, "d"],
        )

    async def create(fresh: int, _: random.Random) -> httpx.Response:
        body = {"name": f"new-{fresh}.mail.example.test", "description": f"Tenantry tenant new-{fresh}"}
        return await jmap(["x:Domain/set", {"create": {"d": body}}, "s"])

    return [
        Kind("domain by name (query + get)", domain_by_name, 200),
        Kind("domain, its DKIM keys and zone", domain_with_keys, 200),
        Kind("create domain (+ keys of the last)", create, 200),
    ]


# -- oCIS --------------------------------------------------------------------------------------------------


def fill_ocis(size: int) -> OcisSandbox:
    """Per tenant: its project space, marked in its description, with the service account as its manager."""
    sandbox = OcisSandbox(app_tokens={"svc": TOKEN}, space_admins={"svc"})
    for n in range(size):
        sandbox.add_space(f"Tenant {n}", f"Tenantry tenant {slug(n)} [tenantry:{tenant_id(n)}]", 10**9, manager="svc")
    return sandbox


def ocis_kinds(sandbox: OcisSandbox, http: httpx.AsyncClient, size: int) -> list[Kind]:
    drive_ids = list(sandbox._spaces)  # in creation order, as filled

    async def listing(_: int, __: random.Random) -> httpx.Response:
        return await http.get("/graph/v1.0/drives", params=PROJECTS)

    async def one(_: int, rng: random.Random) -> httpx.Response:
        drive_id = drive_ids[rng.randrange(size)]
        return await http.get(f"/graph/v1.0/drives/{drive_id.replace('$', '%24')}")

    async def create(fresh: int, _: random.Random) -> httpx.Response:
        body = {"name": f"New {fresh}", "description": f"Tenantry tenant new-{fresh}", "quota": {"total": 10**9}}
        return await http.post("/graph/v1.0/drives", json=body)

    return [
        Kind("list project drives", listing, 200, lambda size: size),
        Kind("get one drive", one, 200),
        Kind("create drive", create, 201),
    ]


# -- measuring ---------------------------------------------------------------------------------------------

Upstream = tuple[str, Callable[[int], Any], Callable[[Any, httpx.AsyncClient, int], list[Kind]], dict[str, Any]]
UPSTREAMS: list[Upstream] = [
    ("authentik", fill_authentik, authentik_kinds, {"headers": {"Authorization": f"Bearer {TOKEN}"}}),
    ("stalwart", fill_stalwart, stalwart_kinds, {"headers": {"Authorization": f"Bearer {TOKEN}"}}),
    ("ocis", fill_ocis, ocis_kinds, {"auth": ("svc", TOKEN)}),
]


@asynccontextmanager
async def client_on(sandbox: Any, options: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(sandbox.app), base_url="http://sandbox.test", **options
    ) as http:
        yield http


async def measure(kind: Kind, requests: int, budget: float, rng: random.Random, fresh: int) -> tuple[int, float]:
    """Send ``requests`` of a kind (fewer when they use up ``budget`` CPU seconds, at least 3) after one
    warm-up; the number sent and the CPU seconds they took."""
    await _checked(kind, fresh, rng)
    gc.collect()
    start = time.process_time()
    sent = 0
    while sent < requests and (sent < 3 or time.process_time() - start < budget):
        sent += 1
        await _checked(kind, fresh + sent, rng)
    return sent, time.process_time() - start


async def _checked(kind: Kind, fresh: int, rng: random.Random) -> None:
    response = await kind.send(fresh, rng)
    if response.status_code != kind.status:
        raise SystemExit(f"{kind.label}: HTTP {response.status_code}, expected {kind.status}: {response.text[:300]}")


async def run(args: argparse.Namespace, report: Report) -> None:
    rng = random.Random(args.seed)
    for size in report.sizes:
        for name, fill, kinds, options in UPSTREAMS:
            began = time.perf_counter()
            sandbox = fill(size)
            filled = time.perf_counter() - began
            print(f"  {name}: {size:,} tenants filled in {filled:.1f} s", file=sys.stderr, flush=True)
            async with client_on(sandbox, options) as http:
                for number, kind in enumerate(kinds(sandbox, http, size)):
                    sent, cpu = await measure(kind, args.requests, args.budget, rng, fresh=number * 1_000_000)
                    result = Result(
                        name, kind.label, size, sent, cpu, cpu / sent * 1e6, kind.items(size), round(filled, 2)
                    )
                    report.results.append(result)
            del sandbox
            gc.collect()


def print_table(report: Report) -> None:
    sizes = report.sizes
    cells = {(r.upstream, r.request, r.size): r for r in report.results}
    rows = list(dict.fromkeys((r.upstream, r.request) for r in report.results))
    head = f"{'upstream':<10} {'request':<36}" + "".join(f"{f'{s:,}':>12}" for s in sizes) + f"{'ratio':>9}"
    print("CPU per request (µs; client and ASGI transport included)")
    print(head)
    print("-" * len(head))
    for upstream, request in rows:
        figures = [cells[(upstream, request, s)].cpu_per_request_us for s in sizes]
        ratio = figures[-1] / figures[0]
        report.ratios[f"{upstream}: {request}"] = round(ratio, 2)
        line = f"{upstream:<10} {request:<36}" + "".join(f"{f:>12,.0f}" for f in figures) + f"{ratio:>9.2f}"
        items = cells[(upstream, request, sizes[-1])].items_per_answer
        if items > 100:  # an answer listing every tenant: show the cost per object listed as well
            per_item = [cells[(upstream, request, s)].cpu_per_request_us / s for s in sizes]
            line += "   per drive listed: " + " / ".join(f"{p:.2f}" for p in per_item) + " µs"
        print(line)
    print(f"ratio = CPU per request at {sizes[-1]:,} tenants / at {sizes[0]:,}")
    print(f"load average at start {report.load_average_start}, at end {report.load_average_end}")
    print(f"peak RSS {report.peak_rss_mib:.0f} MiB")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CPU per request of each sandbox at growing numbers of tenants.")
    parser.add_argument("--sizes", default="1000,10000,100000", help="tenant counts, comma-separated")
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind per size (default 300)")
    parser.add_argument("--budget", type=float, default=3.0, help="CPU seconds per kind and size, at most")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random tenants asked for")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    report = Report(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sizes=sizes,
        load_average_start=[round(x, 2) for x in os.getloadavg()],
    )
    asyncio.run(run(args, report))
    report.load_average_end = [round(x, 2) for x in os.getloadavg()]
    report.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(report)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
