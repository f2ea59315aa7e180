"""API shapes of the orphans feature (camelCase on the wire, like the rest of the API)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from tenantry.states import StepName
from tenantry.tenants.schemas import CamelModel


class OrphanOut(CamelModel):
    """An upstream object that carries Tenantry's marker but that no tenant holds."""

    id: str
    name: str
    tenant_id: str | None = Field(description="The tenant its marker names (None: only its name says it is ours)")
    tenant_slug: str | None = Field(
        description="The slug of the tenant it concerns (the one its marker names, live or purged), or the slug "
        "its name or attributes suggest"
    )
    reason: str = Field(description="Why no tenant holds it")


class UpstreamOrphansOut(CamelModel):
    upstream: StepName
    configured: bool
    error: str | None = Field(default=None, description="Why the upstream could not be listed")
    orphans: list[OrphanOut]


class OrphansOut(CamelModel):
    upstreams: list[UpstreamOrphansOut]


class AdoptIn(CamelModel):
    """``POST /orphans/{upstream}/{objectId}/adopt``: the live tenant that is to hold the object."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    slug: Annotated[str, Field(min_length=1, max_length=63, examples=["acme"])]


class OrphanDeletedOut(CamelModel):
    """What deleting an orphan did upstream."""

    upstream: StepName
    id: str
    name: str
    message: str
    events: list[str]
