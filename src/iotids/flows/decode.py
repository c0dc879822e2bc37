"""Decoding frames into the packet fields a flow needs, one compiled pass over a :class:`~.pcap.FrameBatch`.

Link layers: Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1/v2, raw IP, BSD loopback. Network layers:
IPv4 (options, fragments) and IPv6 (extension headers). Transport: TCP, UDP, ICMP and ICMPv6; any other IP
protocol is kept as protocol 0 with ports 0, as CICFlowMeter does. Lengths follow the IP header, not the frame,
so Ethernet padding is not payload.

Each frame gets a status; only ``OK`` packets reach the flow table. The others are counted by kind:

==========  ==========================================================================================
NON_IP      no IPv4/IPv6 header (ARP, LLDP, STP, unknown link types, ...)
TRUNCATED   the frame ends inside a header it needs
BAD_IP      an IP header that cannot be right: wrong version, header length, or total length below the
            header (TSO super-segments captured with total length 0, which CICFlowMeter drops too)
BAD_L4      a TCP data offset below 5 or a TCP/UDP header longer than the IP payload
==========  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from iotids.flows.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALIASES,
    FrameBatch,
)

OK, NON_IP, TRUNCATED, BAD_IP, BAD_L4 = 0, 1, 2, 3, 4
STATUS_NAMES = ("ok", "non_ip", "truncated", "bad_ip", "bad_l4")

# TCP flag bits as on the wire.
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

#: IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) in the low 64-bit word.
V4_MAPPED = np.uint64(0xFFFF_0000_0000)

_RAW_LINKS = np.array([LINKTYPE_RAW, *LINKTYPE_RAW_ALIASES], np.int64)


@dataclass(slots=True)
class Packets:
    """Decoded packets (struct of arrays); rows with ``status != OK`` carry no meaningful fields."""

    ts: np.ndarray  # int64 µs
    status: np.ndarray  # int8
    src_hi: np.ndarray  # uint64 (the high 64 bits of an IPv6 address, 0 for IPv4)
    src_lo: np.ndarray  # uint64
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray  # int32
    dport: np.ndarray  # int32
    proto: np.ndarray  # int16: 6, 17, 1, 58, or the IP protocol number of anything else
    flags: np.ndarray  # int16 TCP flags (0 for others)
    window: np.ndarray  # int32 TCP window (-1 for others)
    hdr_len: np.ndarray  # int32 transport header bytes (TCP data offset * 4, UDP 8, others 0)
    payload: np.ndarray  # int32 transport payload bytes (0 for ICMP and other protocols)
    icmp_type: np.ndarray  # int16, -1 if not ICMP
    icmp_code: np.ndarray  # int16, -1 if not ICMP
    seq: np.ndarray  # int64 TCP sequence number
    ack: np.ndarray  # int64 TCP acknowledgement number

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray | slice) -> Packets:
        return Packets(*(getattr(self, name)[index] for name in self.__slots__))

    @staticmethod
    def concat(parts: list[Packets]) -> Packets:
        return Packets(*(np.concatenate([getattr(p, name) for p in parts]) for name in Packets.__slots__))

    @staticmethod
    def empty(n: int = 0) -> Packets:
        return Packets(np.empty(n, np.int64), np.empty(n, np.int8), np.empty(n, np.uint64), np.empty(n, np.uint64),
                       np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(n, np.int32),
                       np.empty(n, np.int32), np.empty(n, np.int16), np.empty(n, np.int16),
                       np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32),
                       np.empty(n, np.int16), np.empty(n, np.int16), np.empty(n, np.int64),
                       np.empty(n, np.int64))


@numba.njit(inline="always")
def _u16(b: np.ndarray, i: int) -> int:
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@numba.njit(inline="always")
def _u32(b: np.ndarray, i: int) -> int:
    return (np.int64(b[i]) << 24) | (np.int64(b[i + 1]) << 16) | (np.int64(b[i + 2]) << 8) | np.int64(b[i + 3])


@numba.njit(inline="always")
def _u64(b: np.ndarray, i: int) -> np.uint64:
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(b[i + k])
    return v


@numba.njit(cache=True, nogil=True)
def _decode(linktype: int, raw_links: np.ndarray, buf: np.ndarray, offsets: np.ndarray, caplen: np.ndarray,
            ts: np.ndarray, out_ts: np.ndarray, status: np.ndarray, src_hi: np.ndarray, src_lo: np.ndarray,
            dst_hi: np.ndarray, dst_lo: np.ndarray, sport: np.ndarray, dport: np.ndarray, proto: np.ndarray,
            flags: np.ndarray, window: np.ndarray, hdr_len: np.ndarray, payload: np.ndarray,
            icmp_type: np.ndarray, icmp_code: np.ndarray, seq: np.ndarray, ack: np.ndarray) -> None:
    is_raw = False
    for k in range(len(raw_links)):
        if raw_links[k] == linktype:
            is_raw = True
    for i in range(len(offsets)):
        out_ts[i] = ts[i]
        start = offsets[i]
        end = start + caplen[i]
        st = OK
        ver = 0
        p = start
        # ---- link layer: find the network header and its version
        if linktype == LINKTYPE_ETHERNET:
            p = start + 12
            if p + 2 > end:
                st = TRUNCATED
            else:
                etype = _u16(buf, p)
                p += 2
                while etype == 0x8100 or etype == 0x88A8 or etype == 0x9100:
                    if p + 4 > end:
                        etype = -1
                        break
                    etype = _u16(buf, p + 2)
                    p += 4
                if etype == 0x0800:
                    ver = 4
                elif etype == 0x86DD:
                    ver = 6
                elif etype == -1:
                    st = TRUNCATED
                else:
                    st = NON_IP
        elif linktype in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
            hl = 16 if linktype == LINKTYPE_LINUX_SLL else 20
            if start + hl > end:
                st = TRUNCATED
            else:
                etype = _u16(buf, start + 14) if linktype == LINKTYPE_LINUX_SLL else _u16(buf, start)
                p = start + hl
                ver = 4 if etype == 0x0800 else (6 if etype == 0x86DD else 0)
                if ver == 0:
                    st = NON_IP
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):  # a 4-byte address family
            if start + 4 > end:
                st = TRUNCATED
            else:
                fam = _u32(buf, start)
                if linktype == LINKTYPE_NULL and fam > 0xFFFF:  # host byte order (little endian writer)
                    fam = (fam >> 24) & 0xFF
                p = start + 4
                ver = 4 if fam == 2 else (6 if fam == 24 or fam == 28 or fam == 30 else 0)
                if ver == 0:
                    st = NON_IP
        elif is_raw or linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
            if start >= end:
                st = TRUNCATED
            else:
                ver = np.int64(buf[start]) >> 4
                if ver != 4 and ver != 6:
                    st = NON_IP
        else:
            st = NON_IP
        if st != OK:
            status[i] = st
            continue
        # ---- network layer
        l4 = 0
        l4_len = 0
        nxt = 0
        fragment_tail = False
        if ver == 4:
            if p + 20 > end:
                status[i] = TRUNCATED
                continue
            if (np.int64(buf[p]) >> 4) != 4:
                status[i] = BAD_IP
                continue
            ihl = (np.int64(buf[p]) & 0x0F) * 4
            total = _u16(buf, p + 2)
            if ihl < 20 or total < ihl:
                status[i] = BAD_IP
                continue
            frag = _u16(buf, p + 6)
            fragment_tail = (frag & 0x1FFF) != 0
            nxt = np.int64(buf[p + 9])
            src_hi[i] = 0
            src_lo[i] = V4_MAPPED | np.uint64(_u32(buf, p + 12))
            dst_hi[i] = 0
            dst_lo[i] = V4_MAPPED | np.uint64(_u32(buf, p + 16))
            l4 = p + ihl
            l4_len = total - ihl
        else:
            if p + 40 > end:
                status[i] = TRUNCATED
                continue
            if (np.int64(buf[p]) >> 4) != 6:
                status[i] = BAD_IP
                continue
            plen = _u16(buf, p + 4)
            if plen == 0:  # jumbogram or TSO: take what was captured
                plen = end - p - 40
            nxt = np.int64(buf[p + 6])
            src_hi[i] = _u64(buf, p + 8)
            src_lo[i] = _u64(buf, p + 16)
            dst_hi[i] = _u64(buf, p + 24)
            dst_lo[i] = _u64(buf, p + 32)
            l4 = p + 40
            l4_len = plen
            truncated = False
            while nxt == 0 or nxt == 43 or nxt == 60 or nxt == 44 or nxt == 51:
                if l4 + 8 > end:
                    truncated = True
                    break
                if nxt == 44:
                    ext = 8
                    fragment_tail = (_u16(buf, l4 + 2) & 0xFFF8) != 0
                elif nxt == 51:
                    ext = (np.int64(buf[l4 + 1]) + 2) * 4
                else:
                    ext = (np.int64(buf[l4 + 1]) + 1) * 8
                nxt = np.int64(buf[l4])
                l4 += ext
                l4_len -= ext
                if fragment_tail:
                    break
            if truncated:
                status[i] = TRUNCATED
                continue
            if l4_len < 0:
                status[i] = BAD_IP
                continue
        # ---- transport layer
        sport[i] = 0
        dport[i] = 0
        flags[i] = 0
        window[i] = -1
        hdr_len[i] = 0
        payload[i] = 0
        icmp_type[i] = -1
        icmp_code[i] = -1
        seq[i] = 0
        ack[i] = 0
        if fragment_tail:
            proto[i] = 0 if nxt == 6 or nxt == 17 or nxt == 1 or nxt == 58 else nxt
            status[i] = OK
            continue
        proto[i] = nxt
        if nxt == 6:
            if l4 + 20 > end:
                status[i] = TRUNCATED
                continue
            doff = (np.int64(buf[l4 + 12]) >> 4) * 4
            if doff < 20 or doff > l4_len:
                status[i] = BAD_L4
                continue
            sport[i] = _u16(buf, l4)
            dport[i] = _u16(buf, l4 + 2)
            seq[i] = _u32(buf, l4 + 4)
            ack[i] = _u32(buf, l4 + 8)
            flags[i] = np.int64(buf[l4 + 13])
            window[i] = _u16(buf, l4 + 14)
            hdr_len[i] = doff
            payload[i] = l4_len - doff
        elif nxt == 17:
            if l4 + 8 > end:
                status[i] = TRUNCATED
                continue
            if l4_len < 8:
                status[i] = BAD_L4
                continue
            sport[i] = _u16(buf, l4)
            dport[i] = _u16(buf, l4 + 2)
            hdr_len[i] = 8
            payload[i] = l4_len - 8
        elif nxt == 1 or nxt == 58:
            if l4 + 2 > end:
                status[i] = TRUNCATED
                continue
            icmp_type[i] = buf[l4]
            icmp_code[i] = buf[l4 + 1]
        status[i] = OK


def decode(batch: FrameBatch) -> Packets:
    """Decode every frame of ``batch``; see the module docstring for the statuses."""
    n = len(batch)
    out = Packets.empty(n)
    _decode(batch.linktype, _RAW_LINKS, batch.data, batch.offsets, batch.caplen, batch.ts_us, out.ts,
            out.status, out.src_hi, out.src_lo, out.dst_hi, out.dst_lo, out.sport, out.dport, out.proto,
            out.flags, out.window, out.hdr_len, out.payload, out.icmp_type, out.icmp_code, out.seq, out.ack)
    return out

