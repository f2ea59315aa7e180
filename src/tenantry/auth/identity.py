"""Who is calling: the caller's identity as read from a validated access token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Identity:
    """The subject of a validated token, with the claims authorization decisions are made on.

    ``groups`` are group names as authentik puts them in the ``groups`` claim (direct memberships, compared
    case-sensitively like authentik does). ``claims`` keeps the whole payload for rules that need more;
    it is left out of ``repr`` so logging an identity never dumps a token's contents.
    """

    sub: str
    groups: frozenset[str]
    username: str | None
    email: str | None
    claims: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """Build an identity from a verified payload; ``sub`` must already be known to be a string."""
        raw_groups = claims.get("groups")
        groups = frozenset(g for g in raw_groups if isinstance(g, str)) if isinstance(raw_groups, list) else frozenset()
        return cls(
            sub=str(claims["sub"]),
            groups=groups,
            username=_optional_str(claims.get("preferred_username")),
            email=_optional_str(claims.get("email")),
            claims=MappingProxyType(dict(claims)),
        )

    def is_member(self, group: str) -> bool:
        """Whether the token lists ``group`` among the caller's groups."""
        return group in self.groups


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
