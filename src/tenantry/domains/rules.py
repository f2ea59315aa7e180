"""How one expected record compares with what DNS holds at its name: the verdict and the fix, per purpose."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tenantry.integrations.dns import DnsRecord, Purpose


class CheckState(StrEnum):
    """The state of one published record; UNKNOWN when the lookup failed and nothing is known."""

    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"
    CONFLICTING = "conflicting"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    state: CheckState
    message: str


def shown(record: DnsRecord) -> str:
    """The record as a line to paste into a zone: ``_dmarc.example.org. TXT "v=DMARC1; p=reject"``."""
    value = f'"{record.value}"' if record.type == "TXT" else record.value
    return f"{record.name} {record.type} {value}"


def host(name: str) -> str:
    """A host name compared the DNS way: case-insensitive, with or without the trailing dot."""
    return name.strip().rstrip(".").lower() + "."


def tags(text: str) -> list[tuple[str, str]]:
    """``k=v; k=v`` tag lists (DKIM, DMARC, TLS-RPT, MTA-STS): names lowercased, whitespace dropped in values."""
    out = []
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            out.append((name.strip().lower(), "".join(value.split())))
        elif part.strip():
            out.append((part.strip().lower(), ""))
    return out


def _version(text: str) -> str | None:
    """The value of a leading ``v=`` tag, as written (``DMARC1``, ``STSv1``), or None."""
    first = tags(text)[:1]
    return first[0][1] if first and first[0][0] == "v" else None


def _same_tags(a: str, b: str) -> bool:
    return sorted((k, v.lower()) for k, v in tags(a)) == sorted((k, v.lower()) for k, v in tags(b))


def evaluate(record: DnsRecord, found: Sequence[str], siblings: Sequence[DnsRecord]) -> Verdict:
    """Compare ``record`` with ``found`` (every record of its type at its name). ``siblings`` are the
    expected records of the same name and type, ``record`` included (several MX hosts, say)."""
    if record.type in {"MX", "SRV"}:
        return _preferred(record, found, siblings, kind=record.type)
    if record.type == "CNAME":
        return _cname(record, found)
    if record.type != "TXT":
        return _plain(record, found)
    if record.purpose is Purpose.SPF:
        return _spf(record, found)
    if record.purpose is Purpose.DKIM:
        return _dkim(record, found)
    return _versioned_txt(record, found) if _version(record.value) else _plain(record, found)


# -- MX and SRV: a target among others, ordered by preference -------------------------------------------
def _split(kind: str, text: str) -> tuple[int, str, int]:
    """(preference, target, port) of an MX (``10 mx.``) or SRV (``0 1 993 imap.``) text."""
    parts = text.split()
    if kind == "MX":
        return int(parts[0]), host(parts[1]), 0
    return int(parts[0]), host(parts[3]), int(parts[2])


def _preferred(record: DnsRecord, found: Sequence[str], siblings: Sequence[DnsRecord], *, kind: str) -> Verdict:
    preference, target, port = _split(kind, record.value)
    ours = {_split(kind, s.value)[1:] for s in siblings}
    answers = [_split(kind, text) for text in found]
    goes = "mail for this domain goes there" if kind == "MX" else "clients connect there"
    if not answers:
        reason = "other servers cannot deliver mail to this domain" if kind == "MX" else "clients cannot find it"
        return Verdict(CheckState.MISSING, f"No {kind} record at {record.name}: {reason}. Publish: {shown(record)}")
    if any(t == "." for _, t, _ in answers):
        refusal = "accepts no mail (null MX, RFC 7505)" if kind == "MX" else "is not offered (target '.')"
        return Verdict(
            CheckState.WRONG, f"{record.name} declares that it {refusal}. Replace that record with: {shown(record)}"
        )
    mine = [(p, t, pt) for p, t, pt in answers if (t, pt) == (target, port)]
    if not mine:
        others = ", ".join(sorted({t for _, t, _ in answers}))
        return Verdict(
            CheckState.WRONG,
            f"The {kind} records at {record.name} point at {others}, not {target}: {goes}. "
            f"Replace them with: {shown(record)}",
        )
    best_ours = min(p for p, t, pt in answers if (t, pt) in ours)
    rivals = sorted({(p, t) for p, t, pt in answers if (t, pt) not in ours and p <= best_ours})
    if rivals:
        listed = ", ".join(f"{t} (priority {p})" for p, t in rivals)
        return Verdict(
            CheckState.CONFLICTING,
            f"{target} is published, but {listed} comes before it or with it, so {goes} too. "
            f"Remove those records, or give them a larger priority number than {best_ours}.",
        )
    published = mine[0][0]
    if published != preference:
        return Verdict(
            CheckState.OK,
            f"{target} is published with priority {published} instead of the suggested {preference}; "
            "no other provider's server comes before it.",
        )
    return Verdict(CheckState.OK, f"{shown(record)} is published.")


# -- SPF ------------------------------------------------------------------------------------------------
def _is_spf(text: str) -> bool:
    words = text.strip().lower().split()
    return bool(words) and words[0] == "v=spf1"


def _spf_terms(text: str) -> list[str]:
    return [t[1:] if t.startswith("+") else t for t in text.lower().split()[1:]]


def _spf_final(term: str) -> bool:
    return term.lstrip("+-~?") == "all" or term.startswith("redirect=")


def _spf(record: DnsRecord, found: Sequence[str]) -> Verdict:
    spf = [text for text in found if _is_spf(text)]
    if not spf:
        return Verdict(
            CheckState.MISSING,
            f"No SPF record at {record.name}: receivers cannot tell this server may send for the domain, and "
            f"large providers reject or junk such mail. Publish: {shown(record)}",
        )
    wanted = [t for t in _spf_terms(record.value) if not _spf_final(t)]
    if len(spf) > 1:
        merged = _merged_spf(spf[0], wanted)
        return Verdict(
            CheckState.CONFLICTING,
            f"{len(spf)} SPF records at {record.name}: receivers treat that as a permanent error (RFC 7208 "
            f"section 4.5) and SPF fails for all mail. Merge them into one record, such as: "
            f'{record.name} TXT "{merged}"',
        )
    terms = _spf_terms(spf[0])
    if terms == _spf_terms(record.value):
        return Verdict(CheckState.OK, f"{shown(record)} is published.")
    absent = [t for t in wanted if t not in terms]
    if absent:
        return Verdict(
            CheckState.WRONG,
            f"The SPF record at {record.name} does not authorise {' '.join(absent)}, so mail from this server "
            f'fails SPF. Change it to: {record.name} TXT "{_merged_spf(spf[0], wanted)}"',
        )
    return Verdict(
        CheckState.OK,
        f"The SPF record at {record.name} authorises {' '.join(wanted)}; its other terms differ from the "
        f'suggested "{record.value}", which is fine if they are yours.',
    )


def _merged_spf(current: str, wanted: list[str]) -> str:
    """``current`` with the ``wanted`` mechanisms added before its final ``all`` or ``redirect=``."""
    terms = current.split()[1:]
    body = [t for t in terms if not _spf_final(t.lower())]
    final = [t for t in terms if _spf_final(t.lower())] or ["-all"]
    body += [t for t in wanted if t not in {b.lower().lstrip("+") for b in body}]
    return " ".join(["v=spf1", *body, *final])


# -- DKIM -----------------------------------------------------------------------------------------------
def _is_dkim(text: str) -> bool:
    version = _version(text)
    if version is not None:
        return version.upper() == "DKIM1"
    return any(k == "p" for k, _ in tags(text))


def _dkim(record: DnsRecord, found: Sequence[str]) -> Verdict:
    keys = [text for text in found if _is_dkim(text)]
    if not keys:
        return Verdict(
            CheckState.MISSING,
            f"No DKIM key at {record.name}: receivers cannot verify this server's signatures, and large "
            f"providers reject or junk unauthenticated mail. Publish: {shown(record)}",
        )
    if len(keys) > 1:
        return Verdict(
            CheckState.CONFLICTING,
            f"{len(keys)} DKIM keys at {record.name}: receivers pick one at random and signatures fail when it "
            f"is the wrong one. Keep only: {shown(record)}",
        )
    expected, published = dict(tags(record.value)), dict(tags(keys[0]))
    if not published.get("p"):
        return Verdict(
            CheckState.WRONG,
            f"The DKIM key at {record.name} is revoked (empty p=), so every signature fails. "
            f"Replace it with: {shown(record)}",
        )
    if published.get("p") != expected.get("p") or published.get("k", "rsa") != expected.get("k", "rsa"):
        return Verdict(
            CheckState.WRONG,
            f"The DKIM key at {record.name} is not the key this server signs with (an old key, or another "
            f"provider's), so every signature fails. Replace it with: {shown(record)}",
        )
    return Verdict(CheckState.OK, f"The DKIM key at {record.name} matches the signing key.")


# -- DMARC, TLS-RPT, MTA-STS and other v= records: exactly one per name ----------------------------------
_ONLY_ONE = {
    "DMARC1": "RFC 7489 section 6.6.3: with more than one, receivers apply no DMARC policy",
    "TLSRPTv1": "RFC 8460 section 3: with more than one, senders send no TLS reports",
    "STSv1": "RFC 8461 section 3.1: with more than one, senders apply no MTA-STS policy",
}


def _versioned_txt(record: DnsRecord, found: Sequence[str]) -> Verdict:
    version = _version(record.value) or ""
    same = [text for text in found if (_version(text) or "").lower() == version.lower()]
    if not same:
        return Verdict(CheckState.MISSING, f"No v={version} record at {record.name}. Publish: {shown(record)}")
    if len(same) > 1:
        why = _ONLY_ONE.get(version, "only one is honoured")
        return Verdict(
            CheckState.CONFLICTING,
            f"{len(same)} v={version} records at {record.name} ({why}). Keep only: {shown(record)}",
        )
    published = same[0]
    if version == "DMARC1":
        return _dmarc(record, published)
    if _same_tags(published, record.value) and _version(published) == version:
        return Verdict(CheckState.OK, f"{shown(record)} is published.")
    if version == "TLSRPTv1" and _version(published) == version and dict(tags(published)).get("rua"):
        return Verdict(CheckState.OK, f"A TLS-RPT record is published at {record.name}; reports go where it says.")
    return Verdict(
        CheckState.WRONG, f'The v={version} record at {record.name} is "{published}". Replace it with: {shown(record)}'
    )


def _dmarc(record: DnsRecord, published: str) -> Verdict:
    # The policy and the report addresses are the domain owner's choice (p=none while rolling out, their own
    # report service): a valid record is fine; one receivers ignore is wrong.
    values = dict(tags(published))
    policy = values.get("p", "").lower()
    if _version(published) != "DMARC1" or tags(published)[0][0] != "v":
        problem = "does not start with v=DMARC1 exactly (the version is case-sensitive), so receivers ignore it"
    elif policy not in {"none", "quarantine", "reject"}:
        problem = "has no valid policy (p=none, quarantine or reject), so receivers ignore it"
    elif _same_tags(published, record.value):
        return Verdict(CheckState.OK, f"{shown(record)} is published.")
    else:
        suggested = dict(tags(record.value)).get("p", "")
        note = f" (suggested: p={suggested})" if suggested and suggested != policy else ""
        return Verdict(
            CheckState.OK,
            f"A DMARC record with policy p={policy}{note} is published at {record.name}; it differs from the "
            "suggested record, which is fine if that is your choice.",
        )
    return Verdict(CheckState.WRONG, f"The DMARC record at {record.name} {problem}. Publish: {shown(record)}")


# -- CNAME and records compared as data --------------------------------------------------------------------
def _cname(record: DnsRecord, found: Sequence[str]) -> Verdict:
    if not found:
        return Verdict(CheckState.MISSING, f"No CNAME at {record.name}. Publish: {shown(record)}")
    if len(found) > 1:
        return Verdict(
            CheckState.CONFLICTING,
            f"{len(found)} CNAME records at {record.name}; a name has at most one. Keep only: {shown(record)}",
        )
    if host(found[0]) == host(record.value):
        return Verdict(CheckState.OK, f"{shown(record)} is published.")
    return Verdict(
        CheckState.WRONG,
        f"{record.name} is an alias of {host(found[0])}, not {host(record.value)}. Change it to: {shown(record)}",
    )


def normalised(record_type: str, text: str) -> str:
    """Record data compared as data: case and spacing ignored, names with a trailing dot, TXT as written."""
    if record_type == "TXT":
        return " ".join(text.split())
    if record_type == "TLSA":
        head = text.split()[:3]
        return " ".join([*head, "".join(text.split()[3:]).lower()])
    if record_type == "CAA":
        flags, tag, *value = text.split(maxsplit=2)
        return f"{int(flags)} {tag.lower()} {''.join(value).strip(chr(34)).lower()}"
    return " ".join(host(w) if w.endswith(".") else w.lower() for w in text.split())


def _plain(record: DnsRecord, found: Sequence[str]) -> Verdict:
    if not found:
        return Verdict(CheckState.MISSING, f"No {record.type} record at {record.name}. Publish: {shown(record)}")
    wanted = normalised(record.type, record.value)
    if any(normalised(record.type, text) == wanted for text in found):
        return Verdict(CheckState.OK, f"{shown(record)} is published.")
    return Verdict(
        CheckState.WRONG,
        f"The {record.type} records at {record.name} do not include the expected one. Add: {shown(record)}",
    )
