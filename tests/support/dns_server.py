"""An authoritative DNS server on loopback (UDP and TCP, one random port) serving records tests set and change."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

UDP_PLAIN_LIMIT = 512


@dataclass(frozen=True)
class Query:
    """One question the server received: the name, the type and the transport."""

    name: str
    rdtype: str
    transport: str


@dataclass
class _Records:
    ttl: int
    rdatas: list[dns.rdata.Rdata] = field(default_factory=list)


def _rdata(rdtype: dns.rdatatype.RdataType, value: str) -> dns.rdata.Rdata:
    if rdtype == dns.rdatatype.TXT and not value.startswith('"'):
        # Unquoted TXT text is one logical string, split into 255-byte character-strings as zone files do.
        raw = value.encode()
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        return TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
    # Names in record data are taken as absolute, with or without their trailing dot.
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False)


class DnsTestServer:
    """Answers with the AA flag from an in-memory store: NXDOMAIN for unknown names, NODATA for missing types.

    It follows nothing (a CNAME is answered as is), and can be told to fail (SERVFAIL, REFUSED) or to stay
    silent (the client times out) for a name. ``queries`` records every question, for assertions; ``errors``
    every exception raised while answering (answered SERVFAIL).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.queries: list[Query] = []
        self.errors: list[Exception] = []
        self._store: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], _Records] = {}
        self._failures: dict[dns.name.Name, dns.rcode.Rcode] = {}
        self._silent: set[dns.name.Name] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def nameserver(self) -> str:
        """This server as a ``host:port`` nameserver setting."""
        return f"{self.host}:{self.port}"

    # -- the store -------------------------------------------------------------------------------------
    def set(self, name: str, rdtype: str, values: Iterable[str], ttl: int = 300) -> None:
        """Replace the records of ``rdtype`` at ``name`` with ``values`` (presentation text; TXT unquoted)."""
        qtype = dns.rdatatype.from_text(rdtype)
        self._store[(dns.name.from_text(name), qtype)] = _Records(ttl, [_rdata(qtype, v) for v in values])

    def delete(self, name: str, rdtype: str | None = None) -> None:
        """Remove the records of one type at ``name``, or all of them."""
        owner = dns.name.from_text(name)
        for key in [k for k in self._store if k[0] == owner and (rdtype is None or k[1].name == rdtype.upper())]:
            del self._store[key]

    def clear(self) -> None:
        """Forget every record and every fault."""
        self._store.clear()
        self._failures.clear()
        self._silent.clear()

    def fail(self, name: str, rcode: str = "SERVFAIL") -> None:
        """Answer every question about ``name`` with ``rcode`` (SERVFAIL, REFUSED, ...)."""
        self._failures[dns.name.from_text(name)] = dns.rcode.from_text(rcode)

    def drop(self, name: str) -> None:
        """Never answer a question about ``name``: the client times out."""
        self._silent.add(dns.name.from_text(name))

    def heal(self, name: str) -> None:
        """Answer questions about ``name`` normally again."""
        owner = dns.name.from_text(name)
        self._failures.pop(owner, None)
        self._silent.discard(owner)

    # -- answering -------------------------------------------------------------------------------------
    def _exists(self, name: dns.name.Name) -> bool:
        # A name exists when it owns records or has descendants that do (an empty non-terminal, RFC 8020).
        return any(owner.is_subdomain(name) for owner, _ in self._store)

    def answer(self, request: dns.message.Message, transport: str) -> dns.message.Message | None:
        """The response to ``request``, or None to stay silent."""
        response = dns.message.make_response(request)
        response.flags |= dns.flags.AA
        response.flags &= ~dns.flags.RA
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP if request.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
            return response
        question = request.question[0]
        self.queries.append(Query(question.name.to_text(), dns.rdatatype.to_text(question.rdtype), transport))
        name = question.name
        if name in self._silent:
            return None
        if name in self._failures:
            response.flags &= ~dns.flags.AA
            response.set_rcode(self._failures[name])
            return response
        stored = self._store.get((name, question.rdtype))
        cname = self._store.get((name, dns.rdatatype.CNAME))
        if stored is None and cname is not None:
            stored, question_type = cname, dns.rdatatype.CNAME
        else:
            question_type = question.rdtype
        if stored is not None and stored.rdatas:
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, question_type)
            for rdata in stored.rdatas:
                rrset.add(rdata, stored.ttl)
            response.answer.append(rrset)
        elif not self._exists(name):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def wire(self, request_bytes: bytes, transport: str, limit: int) -> bytes | None:
        """The response to a query in wire format, or None to stay silent."""
        try:
            request = dns.message.from_wire(request_bytes)
        except dns.exception.DNSException:
            return None  # not DNS: a real server drops it too
        try:
            return self._reply(request, transport, limit)
        except Exception as err:  # a bug in a test's data: kept for the fixture to report, answered SERVFAIL
            self.errors.append(err)
            failure = dns.message.make_response(request)
            failure.set_rcode(dns.rcode.SERVFAIL)
            return failure.to_wire()

    def _reply(self, request: dns.message.Message, transport: str, limit: int) -> bytes | None:
        response = self.answer(request, transport)
        if response is None:
            return None
        if transport == "udp":
            limit = max(request.payload, UDP_PLAIN_LIMIT) if request.edns >= 0 else UDP_PLAIN_LIMIT
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(request)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    # -- transports ------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            # UDP and TCP share the port number: take a free UDP port, then try TCP on it.
            udp, _protocol = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port, reuse_address=True)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            return
        raise RuntimeError("no free port for the test DNS server")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._tcp.wait_closed()

    async def __aenter__(self) -> DnsTestServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.wire(await reader.readexactly(length), "tcp", 65535)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsTestServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        reply = self.server.wire(data, "udp", UDP_PLAIN_LIMIT)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
