"""Domain names as Tenantry stores them: ASCII (IDNA 2008), lowercase, fully qualified."""

from __future__ import annotations

import re

import idna

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_hostname(value: str) -> str:
    """A mail domain in its ASCII (IDNA 2008, punycode) form, lowercased; raises ValueError if invalid."""
    candidate = value.strip().rstrip(".").lower()
    if not candidate:
        raise ValueError("must not be empty")
    try:
        ascii_name = idna.encode(candidate, uts46=True).decode("ascii")
    except idna.IDNAError as err:
        raise ValueError(f"is not a valid domain name ({err})") from err
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2:
        raise ValueError("must be a fully qualified domain name such as mail.example.com")
    if not all(_LABEL_RE.match(label) for label in labels):
        raise ValueError("must consist of labels of letters, digits and inner hyphens")
    if labels[-1].isdigit():
        raise ValueError("must end in a top-level domain, not a number")
    return ascii_name
