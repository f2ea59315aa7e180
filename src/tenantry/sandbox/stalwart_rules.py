"""Upstream's rules for names and secrets in the sandbox Stalwart: domain names, local parts, passwords."""

from __future__ import annotations

from functools import cache
from typing import Any

import idna
from publicsuffixlist import PublicSuffixList

from tenantry.sandbox.stalwart_model import SetError, invalid_patch

_LOCAL_SPECIALS = frozenset("!#$%&'*+-/=?^_`{|}~")
# Upstream accepts a name under a suffix on the public-suffix list or under one of these private-use TLDs
# (crates/utils/src/lib.rs `is_valid_domain`: 0.16.2-0.16.7 had the first four, 0.16.0-0.16.1 none).
_RESERVED_TLDS = frozenset(
    {"test", "localhost", "local", "internal", "lan", "home", "corp", "intranet", "private", "localdomain"}
)
_PASSWORD_MIN, _PASSWORD_MAX = 8, 128
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyui",
        "qwerty123",
        "iloveyou",
        "letmein1",
        "abcdefgh",
        "abc12345",
        "welcome1",
    }
)


@cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def _listed_or_reserved(name: str) -> bool:
    # Since 0.16.15 a name that is itself a public suffix (co.uk) is accepted as long as it has a dot.
    listed = "." in name and _public_suffixes().publicsuffix(name) is not None
    return listed or name.rsplit(".", 1)[-1] in _RESERVED_TLDS


def normalise_domain(value: Any, prop: str = "name") -> str:
    """Upstream's ``sanitize_domain``: drop whitespace, lowercase, IDN to punycode; refuse unless the name has
    a dot, no empty label, no trailing dot, and ends in a listed public suffix or a reserved private TLD.

    Like upstream it checks nothing else (label characters and lengths are not validated).
    """
    if not isinstance(value, str):
        raise invalid_patch(prop, "Invalid domain name")
    name = "".join(ch for ch in value if not ch.isspace())
    labels = name.split(".")
    # Each dot must follow a letter, a digit, '-' or '_', and the name must not end in a dot.
    dots_ok = all(label and (label[-1].isalnum() or label[-1] in "-_") for label in labels[:-1])
    if len(labels) < 2 or not dots_ok or not labels[-1]:
        raise invalid_patch(prop, "Invalid domain name")
    name = name.lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as err:
            raise invalid_patch(prop, "Invalid domain name") from err
    if not _listed_or_reserved(name):
        raise invalid_patch(prop, "Invalid domain name")
    return name


def normalise_local_part(value: Any, prop: str = "name") -> str:
    """Upstream's ``sanitize_email_local`` (crates/utils/src/lib.rs): whitespace dropped, letters lowercased,
    letters, digits (any script) and RFC 5322 specials kept; refused when empty, on any other character,
    and on a leading, trailing or doubled dot."""
    if not isinstance(value, str):
        raise invalid_patch(prop, "Invalid email local part")
    out: list[str] = []
    last: str | None = None
    for ch in value:
        if ch in " \t\n\v\f\r":
            continue  # skipped without becoming the last character
        if ch == "." and (last is None or last == "."):
            raise invalid_patch(prop, "Invalid email local part")
        if ch == "." or ch in _LOCAL_SPECIALS:
            out.append(ch)
        elif ch.isupper():
            out.append(ch.lower())
        elif ch.isalnum():
            out.append(ch)
        else:
            raise invalid_patch(prop, "Invalid email local part")
        last = ch
    if not out or last == ".":
        raise invalid_patch(prop, "Invalid email local part")
    return "".join(out)


def password_problem(secret: Any) -> str | None:
    """Why Stalwart would refuse ``secret`` as a new password, in its words (``is_secure_password`` in
    crates/common/src/network/security.rs with the defaults: 8 to 128 characters, zxcvbn score 3); None
    when it would take it. The sandbox approximates zxcvbn with a list of common passwords."""
    if not isinstance(secret, str):
        return "Password is too weak."
    if secret.startswith(("$", "{")):
        return None  # already a hash (crypt or {SCHEME} form): stored as given
    if len(secret) > _PASSWORD_MAX:
        return f"Password must be at most {_PASSWORD_MAX} characters long."
    if len(secret) < _PASSWORD_MIN:
        return f"Password must be at least {_PASSWORD_MIN} characters long."
    if secret.lower() in _COMMON_PASSWORDS or len(set(secret)) <= 2:
        return "Password is too weak."
    return None


def refuse_secondary_credentials(credentials: Any) -> None:
    """App passwords and API keys are issued by the server, never set through ``x:Account/set``."""
    if isinstance(credentials, dict) and any(
        isinstance(c, dict) and c.get("@type") in ("AppPassword", "ApiKey") for c in credentials.values()
    ):
        raise SetError("invalidProperties", "Secondary credentials cannot be set directly.", properties=["credentials"])
