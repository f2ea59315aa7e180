"""Who is asking: the caller every service operation acts for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Managed(Protocol):
    """Anything with people who manage it (a tenant: its owner and admins)."""

    def is_managed_by(self, sub: str) -> bool: ...


@dataclass(frozen=True)
class Actor:
    """The token's ``sub`` and whether they are a platform admin; ``sub`` is None only for the system itself."""

    sub: str | None
    is_admin: bool

    def can_manage(self, thing: Managed) -> bool:
        return self.is_admin or (self.sub is not None and thing.is_managed_by(self.sub))


SYSTEM = Actor(sub=None, is_admin=True)
