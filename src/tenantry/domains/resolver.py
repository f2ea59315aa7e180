"""Asynchronous DNS lookups through chosen nameservers, answering rdata texts or an error a person can act on."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.TXT import TXT

DEFAULT_TIMEOUT = 5.0
# The DNS flag day 2020 payload size: fits every path's MTU, larger answers go over TCP.
EDNS_PAYLOAD = 1232


class DnsLookupError(Exception):
    """A lookup nobody answered usefully: timeout, SERVFAIL, REFUSED, network error. Not NXDOMAIN."""

    def __init__(self, message: str, *, name: str, rdtype: str) -> None:
        super().__init__(message)
        self.name = name
        self.rdtype = rdtype


class DnsLookup(Protocol):
    """What the checks need from a resolver; ``Resolver`` is the real one."""

    async def lookup(self, name: str, rdtype: str) -> list[str]: ...


@dataclass(frozen=True)
class Nameserver:
    """A nameserver address: an IP literal and a port."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 53 else f"{host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """``192.0.2.1``, ``192.0.2.1:5353``, ``2001:db8::1`` or ``[2001:db8::1]:5353``; raises ValueError."""
    value = text.strip()
    host, port = value, "53"
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"nameserver {text!r}: write an IPv6 address with a port as [2001:db8::1]:53")
        port = rest[1:] or "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError as err:
        raise ValueError(f"nameserver {text!r} is not an IPv4 or IPv6 address (with an optional :port)") from err
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"nameserver {text!r} has no valid port (1-65535)")
    return Nameserver(str(address), int(port))


def rdata_text(rdata: dns.rdata.Rdata) -> str:
    """The presentation text of one record; a TXT record's strings joined into one unquoted text."""
    if isinstance(rdata, TXT):
        return b"".join(rdata.strings).decode("utf-8", errors="backslashreplace")
    return rdata.to_text()


class Resolver:
    """Looks names up through the given nameservers (the system's resolver when none) with a total timeout."""

    def __init__(self, nameservers: Sequence[str] = (), *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("the DNS timeout must be positive")
        self.nameservers = tuple(parse_nameserver(n) for n in nameservers)
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _build(self) -> dns.asyncresolver.Resolver:
        # Built on first use: reading the system's configuration is I/O, and tests never need it.
        if self._resolver is None:
            resolver = dns.asyncresolver.Resolver(configure=not self.nameservers)
            if self.nameservers:
                resolver.nameservers = [dns.nameserver.Do53Nameserver(n.host, n.port) for n in self.nameservers]
            resolver.lifetime = self.timeout
            # Two tries per server within the lifetime, so one lost UDP packet is not a failure.
            resolver.timeout = self.timeout / 2
            resolver.use_edns(0, 0, EDNS_PAYLOAD)
            resolver.cache = None
            self._resolver = resolver
        return self._resolver

    def describe(self) -> str:
        """The nameservers asked, for messages: ``127.0.0.1:5353`` or ``the system resolver``."""
        if self.nameservers:
            return ", ".join(str(n) for n in self.nameservers)
        servers = self._build().nameservers
        return "the system resolver" + (f" ({', '.join(str(s) for s in servers)})" if servers else "")

    async def lookup(self, name: str, rdtype: str) -> list[str]:
        """The records of ``rdtype`` at ``name`` as texts; empty when the name or type does not exist.

        A CNAME query answers the CNAME itself; other types follow CNAMEs the way the nameserver answers.
        Raises DnsLookupError when no nameserver gave an answer (timeout, SERVFAIL, REFUSED, network).
        """
        try:
            qname = dns.name.from_text(name)
            qtype = dns.rdatatype.from_text(rdtype)
        except dns.exception.DNSException as err:
            raise ValueError(f"cannot look up {rdtype} {name}: {err}") from err
        resolver = self._build()
        shown = f"{rdtype.upper()} {qname}"
        try:
            answer = await resolver.resolve(qname, qtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.LifetimeTimeout as err:
            message = (
                f"{shown}: no answer from {self.describe()} within {self.timeout:g} s. "
                "Check that the nameserver is reachable and answers DNS queries."
            )
            raise DnsLookupError(message, name=str(qname), rdtype=rdtype.upper()) from err
        except dns.resolver.NoNameservers as err:
            raise DnsLookupError(f"{shown}: {self._failures(err)}", name=str(qname), rdtype=rdtype.upper()) from err
        except dns.exception.DNSException as err:
            message = f"{shown}: lookup through {self.describe()} failed: {err}"
            raise DnsLookupError(message, name=str(qname), rdtype=rdtype.upper()) from err
        return [rdata_text(rdata) for rdata in answer]

    def _failures(self, err: dns.resolver.NoNameservers) -> str:
        """Which server answered what, from dnspython's error trace, with what it usually means."""
        shown = {
            str(ns): str(Nameserver(ns.address, ns.port))
            for ns in self._build().nameservers
            if isinstance(ns, dns.nameserver.Do53Nameserver)
        }
        texts = []
        for server, _tcp, _port, problem, *_ in err.kwargs.get("errors") or []:
            hint = _HINTS.get(str(problem), "")
            texts.append(f"{shown.get(server, server)} answered {problem}{hint}")
        return "; ".join(dict.fromkeys(texts)) or "every nameserver failed to answer"


_HINTS = {
    "SERVFAIL": " (the zone's nameservers are failing, or its DNSSEC signatures do not validate; retry later)",
    "REFUSED": " (it does not answer this client, or does not serve this zone: check the resolver setting)",
}
