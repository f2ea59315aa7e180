"""Mail domain names a tenant may use: well formed, under a known public suffix, and not a public suffix itself."""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList

from tenantry.hostnames import normalise_hostname

# Top-level names reserved for private use that are not on the public-suffix list: RFC 6761 (test,
# localhost), RFC 6762 (local) and ICANN's 2024 reservation of internal. Stalwart accepts these four since
# 0.16.2; 0.16.8 added lan, home, corp, intranet, private and localdomain, which are not reserved by anyone
# and which we leave out, so a name we accept is one every Stalwart from 0.16.2 on accepts too.
SPECIAL_USE_TLDS = frozenset({"test", "localhost", "local", "internal"})


@cache
def _list() -> PublicSuffixList:
    # Parsing the bundled list takes a few tens of milliseconds: once per process, on first use.
    return PublicSuffixList(accept_unknown=False)


def public_suffix(name: str) -> str | None:
    """The public suffix an ASCII, lowercase ``name`` ends in (``co.uk``, ``github.io``), or None if unlisted.

    Both sections of the list count: ICANN's and the private one (``github.io``, ``blogspot.com``).
    """
    suffix = _list().publicsuffix(name)
    if suffix is None and name.rsplit(".", 1)[-1] in SPECIAL_USE_TLDS:
        return name.rsplit(".", 1)[-1]
    return suffix


def registrable_domain(name: str) -> str | None:
    """The part of ``name`` one owner registers (``acme.co.uk`` for ``mail.acme.co.uk``), or None.

    None when ``name`` is itself a public suffix or ends in no known suffix. ``name`` is normalised first, so
    IDN names and trailing dots are fine; an invalid name raises ValueError.
    """
    ascii_name = normalise_hostname(name)
    suffix = public_suffix(ascii_name)
    if suffix is None or suffix == ascii_name:
        return None
    labels = ascii_name.split(".")
    return ".".join(labels[-(suffix.count(".") + 2) :])


def validate_mail_domain(name: str) -> str:
    """``name`` normalised (ASCII, lowercase, no trailing dot) if a tenant may use it as a mail domain.

    Raises ValueError with a message a person can act on when the name is malformed, is itself a public
    suffix (``com``, ``co.uk``, ``github.io``) or does not end in a suffix on the public-suffix list or in one
    of ``test``, ``localhost``, ``local`` and ``internal``.
    """
    try:
        ascii_name = normalise_hostname(name)
    except ValueError as err:
        raise ValueError(f"{name.strip()!r} is not a usable mail domain: it {err}") from err
    suffix = public_suffix(ascii_name)
    if suffix is None:
        tld = ascii_name.rsplit(".", 1)[-1]
        special = ", ".join(f".{t}" for t in sorted(SPECIAL_USE_TLDS))
        raise ValueError(
            f"{ascii_name} does not end in a known top-level domain: {tld!r} is not on the public-suffix list. "
            f"Use a domain you registered, or one under {special} for a private setup."
        )
    if suffix == ascii_name:
        raise ValueError(
            f"{ascii_name} is a public suffix: names under it belong to many different owners. "
            f"Use a domain registered under it, such as example.{ascii_name}."
        )
    return ascii_name
