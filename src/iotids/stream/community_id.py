"""Community ID v1 flow hashing (corelight community-id-spec), so alerts join Zeek, Suricata and Elastic data.

``1:`` + base64(SHA1(seed . saddr . daddr . proto . 0 . sport . dport)), the endpoints ordered so that the smaller
address (then port) comes first; ICMP and ICMPv6 use type and code mapped to port equivalents as Zeek does, and
one-way ICMP messages keep their direction. Protocols without ports hash the addresses and protocol only.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct

ICMP, TCP, UDP, ICMP6, SCTP = 1, 6, 17, 58, 132
_PORT_PROTOCOLS = frozenset({TCP, UDP, SCTP})

# Zeek's request/response pairs; a type not listed is a one-way message (code stands in for the second port).
ICMP4_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
ICMP6_COUNTERPART = {128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136, 136: 135,
                      139: 140, 140: 139, 144: 145, 145: 144}


def pack_address(address: str) -> bytes | None:
    """Network-order bytes of an IPv4 or IPv6 address, or None when it is not one."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, address)
        except (OSError, ValueError):
            continue
    return None


def community_id_packed(
    saddr: bytes, daddr: bytes, proto: int, sport: int | None = None, dport: int | None = None, *, seed: int = 0
) -> str:
    """Community ID of packed addresses; for ICMP/ICMPv6 ``sport``/``dport`` are the message type and code."""
    one_way = False
    if proto in (ICMP, ICMP6) and sport is not None and dport is not None:
        counterpart = (ICMP4_COUNTERPART if proto == ICMP else ICMP6_COUNTERPART).get(sport)
        if counterpart is None:
            one_way = True
        else:
            dport = counterpart
    return community_id_v1_mapped(saddr, daddr, proto, sport, dport, one_way, seed=seed)


def community_id_v1_mapped(
    saddr: bytes, daddr: bytes, proto: int, sport: int | None, dport: int | None, one_way: bool, *, seed: int = 0
) -> str:
    """The hash itself, ports already mapped (ICMP type/counterpart or code); one-way tuples keep their order."""
    has_ports = sport is not None and dport is not None
    if not one_way and not (saddr < daddr or (saddr == daddr and has_ports and sport < dport)):  # type: ignore[operator]
        saddr, daddr, sport, dport = daddr, saddr, dport, sport
    data = struct.pack("!H", seed) + saddr + daddr + struct.pack("BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def community_id(
    src_ip: str, dst_ip: str, proto: int, src_port: int | None = None, dst_port: int | None = None,
    *, seed: int = 0,
) -> str | None:
    """Community ID v1 of a flow, or None when the tuple is incomplete or invalid.

    Examples
    --------
    >>> community_id("1.2.3.4", "5.6.7.8", 6, 1122, 3344)
    '1:wCb3OG7yAFWelaUydu0D+125CLM='
    """
    saddr, daddr = pack_address(src_ip), pack_address(dst_ip)
    if saddr is None or daddr is None or len(saddr) != len(daddr) or not 0 <= proto <= 255:
        return None
    if proto in _PORT_PROTOCOLS or proto in (ICMP, ICMP6):
        if src_port is None or dst_port is None or not (0 <= src_port <= 65535 and 0 <= dst_port <= 65535):
            return None
        return community_id_packed(saddr, daddr, proto, src_port, dst_port, seed=seed)
    return community_id_packed(saddr, daddr, proto, seed=seed)
