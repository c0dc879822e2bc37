"""Building synthetic frames and capture files for the flow tests (dpkt)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dpkt

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_MAC_A, _MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"

Frame = tuple[float, bytes]


def _ip(src: str, dst: str, proto: int, payload: dpkt.Packet) -> dpkt.Packet:
    if ":" in src:
        ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                           nxt=proto, hlim=64, data=payload)
        ip6.plen = len(bytes(payload))
        return ip6
    return dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=payload)


def ether(ip: dpkt.Packet) -> bytes:
    etype = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=_MAC_A, dst=_MAC_B, type=etype, data=ip))


def tcp(ts: float, src: str, sport: int, dst: str, dport: int, flags: int, payload: bytes = b"", *,
        seq: int = 1, ack: int = 0, win: int = 1000) -> Frame:
    segment = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win, data=payload)
    return ts, ether(_ip(src, dst, dpkt.ip.IP_PROTO_TCP, segment))


def udp(ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes = b"") -> Frame:
    datagram = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    datagram.ulen = 8 + len(payload)
    return ts, ether(_ip(src, dst, dpkt.ip.IP_PROTO_UDP, datagram))


def icmp(ts: float, src: str, dst: str, type_: int, code: int = 0) -> Frame:
    message = dpkt.icmp.ICMP(type=type_, code=code, data=dpkt.icmp.ICMP.Echo(id=1, seq=1))
    return ts, ether(_ip(src, dst, dpkt.ip.IP_PROTO_ICMP, message))


def write_pcap(path: Path, frames: list[Frame], *, linktype: int = 1, nanosecond: bool = False,
               big_endian: bool = False) -> Path:
    """A classic pcap file (either byte order, micro- or nanosecond stamps)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype))
    for ts, frame in frames:
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanosecond else 1e6))
        out += struct.pack(order + "IIII", sec, frac, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def write_pcapng(path: Path, frames: list[Frame]) -> Path:
    with path.open("wb") as stream:
        writer = dpkt.pcapng.Writer(stream)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    return path
