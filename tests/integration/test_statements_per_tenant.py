"""What provisioning one workspace costs the store, from POST /tenants to active: a bounded number of
statements, and each run's timeline written in one statement; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

from tenantry.config import Settings
from tests.support.api import api_client
from tests.support.stack import sandbox_suite
from tests.support.statements import recording

# The create's own transaction (1 read of every name the slug and domain could clash with, 4 inserts; the tenant
# is inserted leased to its first run, the create journal's note in its steps), then the record (fence, read,
# tenant, the 3 steps in one executemany, events; the tenant as recorded answers the request, read with its
# admins in the same statement). The run starts from what the create committed: no claim, no note, no read of its own.
MOST_STATEMENTS = 10
POLL = re.compile(r"^UPDATE tenants SET lease_owner=.* WHERE tenants.id IN \(SELECT")


async def test_one_workspace_costs_a_bounded_number_of_statements(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        warm = await client.post("/tenants", json={"slug": "warm", "name": "Warm"})  # caches, sessions, discovery
        assert warm.status_code == 201, warm.text
        with recording(container.engine) as statements:
            created = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})

    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    # The worker loop beside the API polls for due tenants meanwhile; that is not this workspace's cost.
    own = [s for s in statements.sql if not POLL.search(s)]
    assert len(own) <= MOST_STATEMENTS, "\n".join(own)
    assert not [sql for sql in own if re.match(r"UPDATE tenants SET lease_owner=.* WHERE tenants.id = ", sql)]
    assert not statements.of("UPDATE tenant_steps SET create_started_at")
    assert len(statements.of("UPDATE tenant_steps")) == 1  # the three steps' results, written together
    event_inserts = statements.of("INSERT INTO tenant_events")
    assert len(event_inserts) == 2, event_inserts  # the create's, and the whole run's in one
    assert "RETURNING" not in event_inserts[1].upper()  # the run's events: no ids read back
