"""DNS wire format for the cluster DNS server: queries in, `Answer`s out (dnslib does the bytes)."""

from __future__ import annotations

from dataclasses import dataclass

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSError,
    DNSHeader,
    DNSRecord,
)

from podnet.dns.records import Answer, Record

UDP_DEFAULT_SIZE = 512
UDP_MAX_SIZE = 4096
OPCODE_QUERY = 0
CLASS_IN = 1
CLASS_ANY = 255


@dataclass
class Query:
    msg: DNSRecord
    qname: str  # as sent (case kept), without the trailing dot stripped
    qtype: str  # "A", "SRV", ... or "TYPE<n>" for unknown types
    udp_size: int  # the largest UDP answer the client takes
    raw: bytes  # the message as received


class BadQuery(Exception):
    """The packet cannot be answered normally; `reply` is what to send back (or None: drop)."""

    def __init__(self, reply: bytes | None):
        super().__init__("bad query")
        self.reply = reply


def _error_reply(data: bytes, rcode: int) -> bytes | None:
    if len(data) < 12:
        return None
    txid, flags = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    if flags >> 15:
        return None  # never answer an answer
    opcode, rd = (flags >> 11) & 0xF, (flags >> 8) & 1
    reply = DNSRecord(DNSHeader(id=txid, qr=1, opcode=opcode, rd=rd, ra=1, rcode=rcode))
    packed = bytes(reply.pack())
    return packed


def parse_query(data: bytes) -> Query:
    try:
        msg = DNSRecord.parse(data)
    except (DNSError, Exception):
        raise BadQuery(_error_reply(data, RCODE.FORMERR)) from None
    h = msg.header
    if h.qr:
        raise BadQuery(None)
    if h.opcode != OPCODE_QUERY:
        raise BadQuery(_header_reply(msg, RCODE.NOTIMP))
    if len(msg.questions) != 1:
        raise BadQuery(_header_reply(msg, RCODE.FORMERR))
    q = msg.questions[0]
    if q.qclass not in (CLASS_IN, CLASS_ANY):
        raise BadQuery(_header_reply(msg, RCODE.REFUSED))
    size = UDP_DEFAULT_SIZE
    for rr in msg.ar:
        if rr.rtype == QTYPE.OPT:
            size = max(UDP_DEFAULT_SIZE, min(int(rr.rclass), UDP_MAX_SIZE))
    return Query(msg, str(q.qname), QTYPE.get(q.qtype, f"TYPE{q.qtype}"), size, bytes(data))


def _header_reply(msg: DNSRecord, rcode: int) -> bytes:
    reply = msg.reply()
    reply.header.aa = 0
    reply.header.rcode = rcode
    packed = bytes(reply.pack())
    return packed


def _rdata(r: Record) -> object:
    d = r.data
    if r.rtype == "A":
        return A(d[0])
    if r.rtype == "AAAA":
        return AAAA(d[0])
    if r.rtype == "CNAME":
        return CNAME(d[0])
    if r.rtype == "PTR":
        return PTR(d[0])
    if r.rtype == "NS":
        return NS(d[0])
    if r.rtype == "TXT":
        return TXT(d[0])
    if r.rtype == "SRV":
        return SRV(priority=d[0], weight=d[1], port=d[2], target=d[3])
    if r.rtype == "SOA":
        return SOA(d[0], d[1], times=d[2:7])
    raise ValueError(f"no wire form for record type {r.rtype}")


def to_rr(r: Record, owner: str | None = None) -> RR:
    return RR(owner or r.name, getattr(QTYPE, r.rtype), CLASS_IN, r.ttl, _rdata(r))


def _finish(query: Query, reply: DNSRecord, udp: bool) -> bytes:
    if any(rr.rtype == QTYPE.OPT for rr in query.msg.ar):
        reply.add_ar(EDNS0(udp_len=UDP_MAX_SIZE))
    packed = bytes(reply.pack())
    if udp and len(packed) > query.udp_size:
        reply.rr, reply.auth, reply.ar = [], [], []
        reply.header.tc = 1
        packed = bytes(reply.pack())
    return packed


def answer_reply(query: Query, answer: Answer, *, udp: bool, recursion: bool,
                 extra_answers: list[RR] | None = None) -> bytes:
    """The reply to `query` carrying `answer` (owner names echo the question's spelling)."""
    reply = query.msg.reply(ra=1 if recursion else 0, aa=1)
    reply.header.rcode = getattr(RCODE, answer.rcode)
    lower = query.qname.lower()
    for r in answer.answers:
        reply.add_answer(to_rr(r, query.qname if r.name == lower else None))
    for rr in extra_answers or []:
        reply.add_answer(rr)
    for r in answer.authority:
        reply.add_auth(to_rr(r))
    for r in answer.additional:
        reply.add_ar(to_rr(r))
    return _finish(query, reply, udp)


def rcode_reply(query: Query, rcode: str, *, recursion: bool) -> bytes:
    reply = query.msg.reply(ra=1 if recursion else 0, aa=0)
    reply.header.rcode = getattr(RCODE, rcode)
    packed = bytes(reply.pack())
    return packed
