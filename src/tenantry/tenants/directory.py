"""Finding tenants a page at a time (by cursor, filtered and searched), and whether a new one's names are free."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from tenantry.auth.actor import Actor
from tenantry.errors import AppError, ForbiddenError, InvalidInputError
from tenantry.states import TenantStatus
from tenantry.tenants.cursors import decode_cursor, encode_cursor
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import TenantService

MAX_PAGE = 200


@dataclass(frozen=True)
class TenantPage:
    """A page of tenants and the cursor of the next one (None on the last page)."""

    items: Sequence[Tenant]
    next_cursor: str | None


def suggest_slug(name: str) -> str:
    """A slug from a display name: ``Acme Corp`` → ``acme-corp`` (accents dropped, 3 to 63 characters)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:63].strip("-")
    if slug[2:4] == "--":
        slug = slug[:2] + slug[3:]
    return slug if len(slug) >= 3 else ""


def _slug_and_id(cursor: str) -> tuple[str, str]:
    slug, tenant_id = decode_cursor(cursor, field="after", size=2)
    return slug, tenant_id


class TenantDirectory:
    """Works in the tenant service's unit of work; sees exactly what the actor may see."""

    def __init__(self, tenants: TenantService) -> None:
        self._tenants = tenants

    async def browse(
        self,
        actor: Actor,
        *,
        status: TenantStatus | None = None,
        troubled: bool = False,
        text: str | None = None,
        after: str | None = None,
        limit: int = 50,
        everyone: bool = False,
    ) -> TenantPage:
        """A page of the tenants the actor may see; ``everyone`` (the operators' view) is for platform admins."""
        if everyone and not actor.is_admin:
            raise ForbiddenError("the operators' view of every workspace is for platform admins")
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self._tenants.repo.browse(
            status=status,
            troubled=troubled,
            text=(text or "").strip()[:200] or None,
            managed_by=None if actor.is_admin else (actor.sub or ""),
            after=_slug_and_id(after) if after else None,
            limit=limit + 1,
        )
        items = list(rows[:limit])
        return TenantPage(items, encode_cursor(items[-1].slug, items[-1].id) if len(rows) > limit else None)

    async def availability(self, actor: Actor, *, slug: str, name: str, mail_domain: str | None) -> dict[str, str]:
        """What is wrong with a new workspace's fields so far, per field (empty when nothing is): the slug
        rules, whether the slug is free, and whether the mail domain may be claimed. Nothing is written."""
        problems: dict[str, str] = {}
        try:
            TenantCreate.model_validate(
                {"slug": slug or "placeholder", "name": name or "placeholder", "mailDomain": mail_domain or None}
            )
        except ValidationError as err:
            for error in err.errors():
                field = str(error["loc"][0]) if error["loc"] else "form"
                field = "mailDomain" if field in ("mail_domain", "mailDomain") else field
                problems.setdefault(field, str(error["msg"]).removeprefix("Value error, "))
        service = self._tenants
        well_formed = bool(slug) and "slug" not in problems
        if well_formed:
            if slug in service.settings.reserved_slugs:
                problems["slug"] = f"'{slug}' is reserved; choose another"
            elif await service.repo.slug_taken(slug):
                problems["slug"] = f"'{slug}' is already taken; choose another"
        if well_formed and "mailDomain" not in problems:
            domain = TenantCreate.model_validate({"slug": slug, "name": "x", "mailDomain": mail_domain or None})
            try:
                await service.domains.admissible(slug, domain.mail_domain)
            except InvalidInputError as err:
                for problem in err.detail:
                    problems.setdefault(str(problem["field"]), str(problem["message"]))
            except AppError as err:
                problems.setdefault("mailDomain", str(err.detail))
        return problems
