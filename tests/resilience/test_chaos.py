"""Chaos: tenants created while every upstream answers a share of requests with a random fault, then calm.

The three sandboxes are served over loopback HTTP, so a hang holds the socket past the client's timeout (and
is applied afterwards, as by a slow server) and a drop breaks a real connection. The product runs in-process
on SQLite: the API creates the tenants and starts their first reconcile, its worker retries the rest.

Size and seed come from the environment for a run by hand: TENANTRY_CHAOS_TENANTS (default 40),
TENANTRY_CHAOS_SEED (default random; printed, with the figures of the run, under ``pytest -s``).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections import Counter

import pytest
from structlog.testing import capture_logs

from tenantry.config import Settings
from tenantry.integrations.errors import Reason
from tests.support.api import api_client
from tests.support.resilience import (
    MAIL_BASE,
    FaultMix,
    load_average,
    not_exactly_one,
    requests_about,
    sized,
    statuses,
    step_attempts,
    unsettled_steps,
    upstream_objects,
    wait_for,
)
from tests.support.served import UPSTREAMS, served_sandboxes

TENANTS = sized("TENANTRY_CHAOS_TENANTS", 40)
CREATORS = 8  # POST /tenants in flight at once
WORKER_CONCURRENCY = 10
LISTING = r"^/graph/v1\.0/drives$"
HTTP_TIMEOUT = 1.0  # long enough that a healthy sandbox on a loaded machine always answers in time
HANG = 2 * HTTP_TIMEOUT
RETRY_AFTER = 1.0
RETRY_BASE, RETRY_CAP = 0.1, 1.0
# A create that got no answer (a hang, a drop) is looked for again this long before another is sent: longer
# than the sandbox's hang, after which a hung create has been applied.
CREATE_SETTLE = 2 * HANG
MIX = FaultMix()
# With about one request in four failing, a step's attempt fails less than half the time (a few requests
# each), so 15 failures in a row have a chance below 0.5**15 per step; waiting for an unanswered create to
# settle adds a few attempts more. Measured: at most 4 to 11 at 40 to 1,000 tenants.
ATTEMPT_BOUND = 15
# What a failed attempt may blame on the upstream's answer (or its silence); each needs an injected fault.
TRANSPORT_FAILURES = frozenset(
    {Reason.RATE_LIMITED, Reason.UPSTREAM_ERROR, Reason.UPSTREAM_TIMEOUT, Reason.UPSTREAM_UNREACHABLE, "StepTimeout"}
)
# What no transient fault may lead to: a stop for a human, or a step crashing.
STOPS = frozenset(
    {
        Reason.AUTHENTICATION_FAILED,
        Reason.FORBIDDEN,
        Reason.VALIDATION_FAILED,
        Reason.NOT_FOUND,
        Reason.NAME_CONFLICT,
        Reason.UNSUPPORTED_UPSTREAM,
        Reason.UNEXPECTED_RESPONSE,
        Reason.NOT_MARKED,
        "InternalError",
    }
)
# Once the faults stop, every step is due again within the retry cap (or a Retry-After, or a hang still being
# held), and the worker then works through whatever is left at its concurrency.
CALM_BOUND_SECONDS = 20 + CREATE_SETTLE + 0.05 * TENANTS
# Creating takes about a tenth of a second per tenant under these faults; the rest is the wait for calm.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60 + CALM_BOUND_SECONDS + 0.5 * TENANTS)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_under_random_faults_every_tenant_ends_active_with_one_object_per_upstream_and_bounded_attempts(
    database_url: str,
) -> None:
    seed = int(os.environ.get("TENANTRY_CHAOS_SEED") or random.randrange(2**32))
    # The seed repeats each sandbox's draws, though not which of the concurrent requests meets which draw.
    print(f"\nchaos: {TENANTS} tenants, seed {seed} (TENANTRY_CHAOS_SEED={seed} repeats the draws)")
    load_before = load_average()
    with served_sandboxes() as served, capture_logs() as logged:
        for offset, controls in enumerate(served.all_controls().values()):
            controls.rng.seed(seed + offset)
            for rule in MIX.rules(hang_seconds=HANG, retry_after=RETRY_AFTER):
                controls.add_fault(rule)
        settings = Settings(
            **served.suite.settings(),
            database_url=database_url,
            auth_enabled=False,
            mail_domain_base=MAIL_BASE,
            http_timeout_seconds=HTTP_TIMEOUT,
            step_timeout_seconds=15,
            retry_base_seconds=RETRY_BASE,
            retry_cap_seconds=RETRY_CAP,
            create_settle_seconds=CREATE_SETTLE,
            resync_interval_seconds=3600,
            pending_poll_seconds=0.1,
            worker_poll_seconds=0.05,
            worker_concurrency=WORKER_CONCURRENCY,
            lease_seconds=10,
            create_wait_seconds=2,
            dns_resolvers="127.0.0.1:9",
        )
        async with api_client(settings) as (client, container):
            started = time.monotonic()
            gate = asyncio.Semaphore(CREATORS)

            async def create(n: int) -> tuple[str, str]:
                slug = f"chaos-{n:05d}"
                async with gate:
                    response = await client.post("/tenants", json={"slug": slug, "name": f"Chaos {n}"})
                assert response.status_code == 201, response.text
                return response.json()["id"], slug

            tenants = dict(await asyncio.gather(*(create(n) for n in range(TENANTS))))
            chaos_seconds = time.monotonic() - started
            for controls in served.all_controls().values():
                controls.clear_faults()
            faults = {
                name: Counter(r.fault for r in controls.requests() if r.fault is not None)
                for name, controls in served.all_controls().items()
            }
            requests = {name: len(controls.requests()) for name, controls in served.all_controls().items()}
            # oCIS lookups by marker made at the same time share one listing: a fault on it fails each of them.
            shared = dict.fromkeys(UPSTREAMS, 0)
            shared["ocis"] = sum(1 for r in served.controls("ocis").requests("GET", LISTING) if r.fault is not None) * (
                WORKER_CONCURRENCY + CREATORS - 1
            )

            async def all_active() -> bool:
                return set((await statuses(container.sessionmaker)).values()) == {"active"}

            calm_seconds = await wait_for(
                all_active,
                "every tenant to become active",
                timeout=CALM_BOUND_SECONDS,
                explain=lambda: unsettled_steps(container.sessionmaker),
            )
            attempts = await step_attempts(container.sessionmaker)
            objects = upstream_objects(served.suite, tenants)
            wrong = not_exactly_one(objects, tenants)
            slugs = {slug: tenant_id for tenant_id, slug in tenants.items()}
            evidence = {
                f"{name} {slug}": requests_about(served.controls(name), slugs.get(slug, slug))
                for name, found in wrong.items()
                for slug in found
            }
    load_after = load_average()
    failures: dict[str, Counter[str]] = {name: Counter() for name in UPSTREAMS}
    for event in logged:
        if event["event"] == "step.failed":
            failures[str(event["step"])][str(event["reason"])] += 1

    counts = {step: Counter(n for _, n in by_tenant.values()) for step, by_tenant in attempts.items()}
    print(f"  created in {chaos_seconds:.1f}s under faults, all active {calm_seconds:.1f}s after they stopped")
    for name in UPSTREAMS:
        injected = sum(faults[name].values())
        print(f"  {name}: {requests[name]} requests, {injected} faults ({injected / max(requests[name], 1):.0%})")
        print(f"    faults {dict(faults[name])}, failed attempts {dict(failures[name])}")
        values = [n for _, n in attempts[name].values()]
        print(
            f"    attempts: max {max(values)}, mean {statistics.mean(values):.2f}, {dict(sorted(counts[name].items()))}"
        )
    print(f"  load average before {load_before}, after {load_after}")

    assert wrong == {}, f"duplicate or missing upstream objects; their requests: {evidence}"
    assert set(attempts) == set(UPSTREAMS)
    for name in UPSTREAMS:
        assert set(attempts[name]) == set(tenants)
        assert {status for status, _ in attempts[name].values()} == {"ok"}
        # An attempt failed on the upstream's answer only where a fault was injected: none on its own (a pool
        # starved of connections, a client timing out on a healthy upstream).
        blamed = sum(n for reason, n in failures[name].items() if reason in TRANSPORT_FAILURES)
        assert blamed <= sum(faults[name].values()) + shared[name], (name, failures[name], faults[name], shared)
        # Faults are transient: none may leave a step stopped for a human or crashing (as a retry tripping over
        # what a timed-out attempt did upstream would).
        assert STOPS.isdisjoint(failures[name]), (name, failures[name])
        assert max(n for _, n in attempts[name].values()) <= ATTEMPT_BOUND, (name, counts[name])
    assert all(sum(f.values()) > 0 for f in faults.values()), "the faults never fired: nothing was tested"
