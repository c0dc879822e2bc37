"""The flow table: CICFlowMeter's per-packet state machine, compiled with numba.

State lives in two arrays indexed by a flow slot: ``FI`` (int64 counters, times, keys) and ``FD`` (float64 running
statistics kept like Apache commons-math ``SummaryStatistics``: Welford mean and second moment, min, max, sum).
A typed dict maps the bidirectional 5-tuple to its slot. Finished flows are copied to emission buffers; the
features are computed from those rows in :mod:`.features`.

The two flavours follow the Java sources (BasicFlow / FlowGenerator / BasicPacketInfo):

``cicids2017`` (ahlashkari/CICFlowMeter as uploaded by CIC in Feb. 2018, the generator of CICIDS2017)
    a flow ends at its first FIN (added, then emitted), at 120 s after its start, or at the end of the capture;
    flows of one packet are dropped at a timeout and at the end. Flags, PSH/URG counts, the window of the forward
    side and the subflow/bulk helpers see the first packet only; ``Init_Win_bytes_backward`` is the window of the
    last backward packet; the packet-length statistics count the first packet twice.
``engelen2021`` (GintsEngelen/CICFlowMeter, the corrected tool)
    a TCP flow ends after FIN in both directions and the last ACK, or after an RST, once the next SYN of the same
    5-tuple arrives (or at the timeout / end); every packet is counted; ICMP flows split on a new type and code;
    retransmissions are packets whose (source, seq, ack, payload length, window) was seen before in the connection;
    a flow cut by the timeout continues the connection (same direction, accumulated connection time).

A timed-out flow is emitted as soon as the capture clock passes its timeout (CICFlowMeter waits for the next
packet of the same 5-tuple; the features are the same). What that next packet needs to know (direction, connection
time, retransmission history) is kept in a small tombstone for ``tombstone_ttl`` microseconds of capture time
(and at most ``max_tombstones`` of them).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.typed import Dict

CIC2017, ENGELEN = 0, 1

# ---- integer state columns (FI)
K0 = 0  # 6 key columns: a_hi, a_lo, b_hi, b_lo, ports, proto
SRC_HI, SRC_LO, DST_HI, DST_LO, SPORT, DPORT, PROTO, FID_A = 6, 7, 8, 9, 10, 11, 12, 13
START, LAST, FWD_LAST, BWD_LAST = 14, 15, 16, 17
FWD_N, BWD_N, FWD_BYTES, BWD_BYTES, FWD_HDR, BWD_HDR = 18, 19, 20, 21, 22, 23
FLAG0 = 24  # 8 columns: FIN, SYN, RST, PSH, ACK, URG, CWR, ECE
FWD_PSH, BWD_PSH, FWD_URG, BWD_URG, FWD_RST, BWD_RST, FWD_FIN, BWD_FIN = 32, 33, 34, 35, 36, 37, 38, 39
ACT_FWD, ACT_BWD, MINSEG_FWD, MINSEG_BWD, WIN_FWD, WIN_BWD = 40, 41, 42, 43, 44, 45
START_ACTIVE, END_ACTIVE, SF_LAST, SF_COUNT = 46, 47, 48, 49
BULK_F, BULK_B = 50, 58  # 8 columns each: duration, packets, size, states, pkt helper, start helper,
# size helper, last bulk time
B_DUR, B_PKTS, B_SIZE, B_STATES, B_PKTHELP, B_STARTHELP, B_SIZEHELP, B_LAST = 0, 1, 2, 3, 4, 5, 6, 7
TCP_STATE, CUM, ICMP_CODE, ICMP_TYPE, RETX_FWD, RETX_BWD, RSET = 66, 67, 68, 69, 70, 71, 72
NI = 73

# ---- running statistics (FD): 8 statistics x (n, mean, m2, min, max, sum)
ST_FWD_LEN, ST_BWD_LEN, ST_FLOW_LEN, ST_FLOW_IAT, ST_FWD_IAT, ST_BWD_IAT, ST_ACTIVE, ST_IDLE = range(8)
S_N, S_MEAN, S_M2, S_MIN, S_MAX, S_SUM = range(6)
NSTAT = 6
ND = 8 * NSTAT

# TCP connection states of the corrected tool
ST_NONE, ST_FIRST_FIN, ST_SECOND_FIN, ST_READY = 0, 1, 2, 3

# ---- parameters (P)
P_FLAVOR, P_TIMEOUT, P_ACTIVITY, P_TOMB_TTL, P_TOMB_MAX = 0, 1, 2, 3, 4
NP = 5

#: A connection's retransmission history holds at most this many segments; when full it starts again (CICFlowMeter
#: keeps them all, which a long bulk transfer makes unbounded).
RSET_CAP = 1 << 17

# ---- counters (M)
M_FREE, M_NEXT_RSET, M_EMITTED, M_LAST_TS = 0, 1, 2, 3
NM = 4

# TCP flag bits (wire order) for the 8 flag columns FIN, SYN, RST, PSH, ACK, URG, CWR, ECE
_FLAG_BITS = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80, 0x40)
F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

KEY = types.UniTuple(types.int64, 6)
TOMB = types.UniTuple(types.int64, 10)
RKEY = types.UniTuple(types.int64, 6)
RSET_T = types.DictType(RKEY, types.int8)


def new_index() -> Dict:
    return Dict.empty(KEY, types.int64)


def new_tombstones() -> Dict:
    return Dict.empty(KEY, TOMB)


def new_rsets() -> Dict:
    return Dict.empty(types.int64, RSET_T)


@numba.njit(cache=True, nogil=True)
def _stat_add(FD: np.ndarray, s: int, stat: int, x: float) -> None:
    b = stat * NSTAT
    n = FD[s, b + S_N] + 1.0
    FD[s, b + S_N] = n
    dev = x - FD[s, b + S_MEAN]
    ndev = dev / n
    FD[s, b + S_MEAN] += ndev
    FD[s, b + S_M2] += (n - 1.0) * dev * ndev
    if n == 1.0 or x < FD[s, b + S_MIN]:
        FD[s, b + S_MIN] = x
    if n == 1.0 or x > FD[s, b + S_MAX]:
        FD[s, b + S_MAX] = x
    FD[s, b + S_SUM] += x


@numba.njit(cache=True, nogil=True)
def _update_active_idle(FI: np.ndarray, FD: np.ndarray, s: int, ts: int, threshold: int) -> None:
    if ts - FI[s, END_ACTIVE] > threshold:
        if FI[s, END_ACTIVE] - FI[s, START_ACTIVE] > 0:
            _stat_add(FD, s, ST_ACTIVE, float(FI[s, END_ACTIVE] - FI[s, START_ACTIVE]))
        _stat_add(FD, s, ST_IDLE, float(ts - FI[s, END_ACTIVE]))
        FI[s, START_ACTIVE] = ts
        FI[s, END_ACTIVE] = ts
    else:
        FI[s, END_ACTIVE] = ts


@numba.njit(cache=True, nogil=True)
def _update_bulk(FI: np.ndarray, s: int, base: int, other_last: int, size: int, ts: int) -> None:
    if other_last > FI[s, base + B_STARTHELP]:
        FI[s, base + B_STARTHELP] = 0
    if size <= 0:
        return
    if FI[s, base + B_STARTHELP] == 0:
        FI[s, base + B_STARTHELP] = ts
        FI[s, base + B_PKTHELP] = 1
        FI[s, base + B_SIZEHELP] = size
        FI[s, base + B_LAST] = ts
    elif ts - FI[s, base + B_LAST] > 1_000_000:
        FI[s, base + B_STARTHELP] = ts
        FI[s, base + B_LAST] = ts
        FI[s, base + B_PKTHELP] = 1
        FI[s, base + B_SIZEHELP] = size
    else:
        FI[s, base + B_PKTHELP] += 1
        FI[s, base + B_SIZEHELP] += size
        if FI[s, base + B_PKTHELP] == 4:
            FI[s, base + B_STATES] += 1
            FI[s, base + B_PKTS] += FI[s, base + B_PKTHELP]
            FI[s, base + B_SIZE] += FI[s, base + B_SIZEHELP]
            FI[s, base + B_DUR] += ts - FI[s, base + B_STARTHELP]
        elif FI[s, base + B_PKTHELP] > 4:
            FI[s, base + B_PKTS] += 1
            FI[s, base + B_SIZE] += size
            FI[s, base + B_DUR] += ts - FI[s, base + B_LAST]
        FI[s, base + B_LAST] = ts


@numba.njit(cache=True, nogil=True)
def _count_flags(FI: np.ndarray, s: int, flags: int) -> None:
    for k in range(8):
        if flags & _FLAG_BITS[k]:
            FI[s, FLAG0 + k] += 1


@numba.njit(cache=True, nogil=True)
def _retransmission(FI: np.ndarray, rsets: Dict, s: int, fwd: bool, src_hi: int, src_lo: int, seq: int,
                    ack: int, payload: int, window: int) -> None:
    seen = rsets[FI[s, RSET]]
    rk = (src_hi, src_lo, seq, ack, payload, window)
    if len(seen) >= RSET_CAP:
        seen.clear()
    if rk in seen:
        if fwd:
            FI[s, RETX_FWD] += 1
        else:
            FI[s, RETX_BWD] += 1
    else:
        seen[rk] = np.int8(1)


@numba.njit(cache=True, nogil=True)
def _first_packet(FI: np.ndarray, FD: np.ndarray, rsets: Dict, s: int, flavor: int, fwd: bool, ts: int,
                  flags: int, window: int, hdr: int, payload: int, src_hi: int, src_lo: int, seq: int,
                  ack: int) -> None:
    """``BasicFlow.firstPacket``; identifiers, protocol and orientation are set by the caller."""
    FI[s, START] = ts
    FI[s, LAST] = ts
    FI[s, START_ACTIVE] = ts
    FI[s, END_ACTIVE] = ts
    _count_flags(FI, s, flags)
    _stat_add(FD, s, ST_FLOW_LEN, float(payload))
    if flavor == CIC2017:
        # subflow detection runs on the first packet only and counts one subflow; the forward branch adds the
        # payload to the packet-length statistics a second time.
        FI[s, SF_COUNT] = 1
        _stat_add(FD, s, ST_FLOW_LEN, float(payload))
    else:
        FI[s, SF_LAST] = ts
        if fwd:
            _update_bulk(FI, s, BULK_F, FI[s, BULK_B + B_LAST], payload, ts)
        else:
            _update_bulk(FI, s, BULK_B, FI[s, BULK_F + B_LAST], payload, ts)
    if fwd:
        FI[s, MINSEG_FWD] = hdr
        FI[s, WIN_FWD] = window
        _stat_add(FD, s, ST_FWD_LEN, float(payload))
        FI[s, FWD_HDR] = hdr
        FI[s, FWD_LAST] = ts
        FI[s, FWD_BYTES] += payload
        FI[s, FWD_N] += 1
        if flags & F_PSH:
            FI[s, FWD_PSH] += 1
        if flags & F_URG:
            FI[s, FWD_URG] += 1
        if flavor == ENGELEN:
            if payload >= 1:
                FI[s, ACT_FWD] += 1
            if flags & F_FIN:
                FI[s, FWD_FIN] += 1
            if flags & F_RST:
                FI[s, FWD_RST] += 1
    else:
        FI[s, MINSEG_BWD] = hdr
        FI[s, WIN_BWD] = window
        _stat_add(FD, s, ST_BWD_LEN, float(payload))
        FI[s, BWD_HDR] = hdr
        FI[s, BWD_LAST] = ts
        FI[s, BWD_BYTES] += payload
        FI[s, BWD_N] += 1
        if flags & F_PSH:
            FI[s, BWD_PSH] += 1
        if flags & F_URG:
            FI[s, BWD_URG] += 1
        if payload >= 1:
            FI[s, ACT_BWD] += 1
        if flags & F_FIN:
            FI[s, BWD_FIN] += 1
        if flags & F_RST:
            FI[s, BWD_RST] += 1
    if flavor == ENGELEN and FI[s, PROTO] == 6:
        _retransmission(FI, rsets, s, fwd, src_hi, src_lo, seq, ack, payload, window)


@numba.njit(cache=True, nogil=True)
def _add_packet(FI: np.ndarray, FD: np.ndarray, rsets: Dict, s: int, flavor: int, ts: int, flags: int,
                window: int, hdr: int, payload: int, src_hi: int, src_lo: int, seq: int, ack: int) -> None:
    """``BasicFlow.addPacket``: the direction is the packet's source IP against the flow's."""
    fwd = src_hi == FI[s, SRC_HI] and src_lo == FI[s, SRC_LO]
    if flavor == ENGELEN:
        if fwd:
            _update_bulk(FI, s, BULK_F, FI[s, BULK_B + B_LAST], payload, ts)
        else:
            _update_bulk(FI, s, BULK_B, FI[s, BULK_F + B_LAST], payload, ts)
        if ts - FI[s, SF_LAST] > 1_000_000:
            FI[s, SF_COUNT] += 1
        FI[s, SF_LAST] = ts
        _count_flags(FI, s, flags)
        if FI[s, PROTO] == 6:
            _retransmission(FI, rsets, s, fwd, src_hi, src_lo, seq, ack, payload, window)
    _stat_add(FD, s, ST_FLOW_LEN, float(payload))
    if fwd:
        if payload >= 1:
            FI[s, ACT_FWD] += 1
        _stat_add(FD, s, ST_FWD_LEN, float(payload))
        FI[s, FWD_HDR] += hdr
        FI[s, FWD_N] += 1
        FI[s, FWD_BYTES] += payload
        if FI[s, FWD_N] > 1:
            _stat_add(FD, s, ST_FWD_IAT, float(ts - FI[s, FWD_LAST]))
        FI[s, FWD_LAST] = ts
        FI[s, MINSEG_FWD] = min(hdr, FI[s, MINSEG_FWD])
        if flavor == ENGELEN:
            if flags & F_PSH:
                FI[s, FWD_PSH] += 1
            if flags & F_URG:
                FI[s, FWD_URG] += 1
            if flags & F_FIN:
                FI[s, FWD_FIN] += 1
            if flags & F_RST:
                FI[s, FWD_RST] += 1
    else:
        _stat_add(FD, s, ST_BWD_LEN, float(payload))
        if flavor == CIC2017:
            FI[s, WIN_BWD] = window
        else:
            if payload >= 1:
                FI[s, ACT_BWD] += 1
            if FI[s, WIN_BWD] == 0:
                FI[s, WIN_BWD] = window
            FI[s, MINSEG_BWD] = min(hdr, FI[s, MINSEG_BWD])
            if flags & F_PSH:
                FI[s, BWD_PSH] += 1
            if flags & F_URG:
                FI[s, BWD_URG] += 1
            if flags & F_FIN:
                FI[s, BWD_FIN] += 1
            if flags & F_RST:
                FI[s, BWD_RST] += 1
        FI[s, BWD_HDR] += hdr
        FI[s, BWD_N] += 1
        FI[s, BWD_BYTES] += payload
        if FI[s, BWD_N] > 1:
            _stat_add(FD, s, ST_BWD_IAT, float(ts - FI[s, BWD_LAST]))
        FI[s, BWD_LAST] = ts
    _stat_add(FD, s, ST_FLOW_IAT, float(ts - FI[s, LAST]))
    FI[s, LAST] = ts


@numba.njit(cache=True, nogil=True)
def _emit(FI: np.ndarray, FD: np.ndarray, s: int, EI: np.ndarray, ED: np.ndarray, M: np.ndarray) -> None:
    e = M[M_EMITTED]
    EI[e, :] = FI[s, :]
    ED[e, :] = FD[s, :]
    M[M_EMITTED] = e + 1


@numba.njit(cache=True, nogil=True)
def _reset(FI: np.ndarray, FD: np.ndarray, s: int, key: tuple, proto: int, icmp_type: int, icmp_code: int,
           flavor: int) -> None:
    FI[s, :] = 0
    FD[s, :] = 0.0
    if flavor == CIC2017:  # Init_Win_bytes_* start at -1 in the old tool, 0 in the corrected one
        FI[s, WIN_FWD] = -1
        FI[s, WIN_BWD] = -1
    for k in range(6):
        FI[s, K0 + k] = key[k]
    FI[s, PROTO] = proto
    FI[s, SF_LAST] = -1
    FI[s, ICMP_TYPE] = icmp_type
    FI[s, ICMP_CODE] = icmp_code


@numba.njit(cache=True, nogil=True)
def _orient(FI: np.ndarray, s: int, src_hi: int, src_lo: int, sport: int, dst_hi: int, dst_lo: int,
            dport: int) -> None:
    FI[s, SRC_HI] = src_hi
    FI[s, SRC_LO] = src_lo
    FI[s, SPORT] = sport
    FI[s, DST_HI] = dst_hi
    FI[s, DST_LO] = dst_lo
    FI[s, DPORT] = dport


@numba.njit(cache=True, nogil=True)
def process(ts_a: np.ndarray, src_hi_a: np.ndarray, src_lo_a: np.ndarray, dst_hi_a: np.ndarray,
            dst_lo_a: np.ndarray, sport_a: np.ndarray, dport_a: np.ndarray, proto_a: np.ndarray,
            flags_a: np.ndarray, window_a: np.ndarray, hdr_a: np.ndarray, payload_a: np.ndarray,
            itype_a: np.ndarray, icode_a: np.ndarray, seq_a: np.ndarray, ack_a: np.ndarray, start: int,
            P: np.ndarray, M: np.ndarray, FI: np.ndarray, FD: np.ndarray, free: np.ndarray, index: Dict,
            tombs: Dict, rsets: Dict, EI: np.ndarray, ED: np.ndarray) -> int:
    """Feed packets ``start..`` to the flow table; returns the index of the first packet not processed.

    Processing stops early when no free slot is left (the caller grows the table) or the emission buffers
    ``EI``/``ED`` are full (the caller collects them), and the caller calls again.
    """
    flavor = P[P_FLAVOR]
    timeout = P[P_TIMEOUT]
    activity = P[P_ACTIVITY]
    n = len(ts_a)
    room = len(EI)
    for j in range(start, n):
        if M[M_FREE] == 0 or M[M_EMITTED] == room:
            return j
        ts = ts_a[j]
        M[M_LAST_TS] = max(M[M_LAST_TS], ts)
        raw_proto = proto_a[j]
        if raw_proto == 6 or raw_proto == 17 or (flavor == ENGELEN and (raw_proto == 1 or raw_proto == 58)):
            proto = raw_proto
        else:
            proto = 0
        s_hi = np.int64(src_hi_a[j])
        s_lo = np.int64(src_lo_a[j])
        d_hi = np.int64(dst_hi_a[j])
        d_lo = np.int64(dst_lo_a[j])
        sp = np.int64(sport_a[j]) if proto == 6 or proto == 17 else 0
        dp = np.int64(dport_a[j]) if proto == 6 or proto == 17 else 0
        flags = np.int64(flags_a[j]) if proto == 6 else 0
        # the old tool's window is -1 without TCP, the corrected one's 0
        window = np.int64(window_a[j]) if proto == 6 else (-1 if flavor == CIC2017 else 0)
        hdr = np.int64(hdr_a[j]) if proto == 6 or proto == 17 else 0
        payload = np.int64(payload_a[j]) if proto == 6 or proto == 17 else 0
        itype = np.int64(itype_a[j]) if proto == 1 or proto == 58 else -1
        icode = np.int64(icode_a[j]) if proto == 1 or proto == 58 else -1
        seq = np.int64(seq_a[j])
        ack = np.int64(ack_a[j])
        # canonical bidirectional key: the smaller (address, port) endpoint first
        if s_hi != d_hi:
            src_first = np.uint64(s_hi) < np.uint64(d_hi)
        elif s_lo != d_lo:
            src_first = np.uint64(s_lo) < np.uint64(d_lo)
        else:
            src_first = sp <= dp
        if src_first:
            key = (s_hi, s_lo, d_hi, d_lo, (sp << 16) | dp, proto)
        else:
            key = (d_hi, d_lo, s_hi, s_lo, (dp << 16) | sp, proto)
        have_old = key in index
        slot = index[key] if have_old else -1
        z = np.int64(0)
        tomb = (z, z, z, z, z, z, z, z, z, z)
        have_tomb = False
        if not have_old and key in tombs:
            tomb = tombs[key]
            del tombs[key]
            have_tomb = True
        if have_old:
            s = slot
            expired = ts - FI[s, START] > timeout
            if flavor == CIC2017:
                if not expired:
                    if flags & F_FIN:
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                        _emit(FI, FD, s, EI, ED, M)
                        del index[key]
                        free[M[M_FREE]] = s
                        M[M_FREE] += 1
                    else:
                        _update_active_idle(FI, FD, s, ts, activity)
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                    continue
                if FI[s, FWD_N] + FI[s, BWD_N] > 1:
                    _emit(FI, FD, s, EI, ED, M)
                tomb = (FI[s, SRC_HI], FI[s, SRC_LO], FI[s, DST_HI], FI[s, DST_LO], FI[s, SPORT], FI[s, DPORT], 0, 0, 0,
                        0)
                have_tomb = True
            else:
                ready_syn = FI[s, TCP_STATE] == ST_READY and (flags & F_SYN) != 0
                if not expired and not ready_syn:
                    if flags & F_FIN:
                        _update_active_idle(FI, FD, s, ts, activity)
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                        if FI[s, TCP_STATE] == ST_NONE:
                            FI[s, TCP_STATE] = ST_FIRST_FIN
                        elif FI[s, TCP_STATE] == ST_FIRST_FIN and FI[s, FWD_FIN] > 0 and FI[s, BWD_FIN] > 0:
                            FI[s, TCP_STATE] = ST_SECOND_FIN
                    elif flags & F_RST:
                        _update_active_idle(FI, FD, s, ts, activity)
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                        FI[s, TCP_STATE] = ST_READY
                    elif flags & F_ACK:
                        _update_active_idle(FI, FD, s, ts, activity)
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                        if FI[s, TCP_STATE] == ST_SECOND_FIN:
                            FI[s, TCP_STATE] = ST_READY
                    elif (proto == 1 or proto == 58) and FI[s, ICMP_CODE] != icode and FI[s, ICMP_TYPE] != itype:
                        _emit(FI, FD, s, EI, ED, M)
                        fid_a = FI[s, FID_A]
                        rset = FI[s, RSET]
                        _reset(FI, FD, s, key, proto, itype, icode, flavor)
                        FI[s, FID_A] = fid_a
                        FI[s, RSET] = rset
                        rsets[rset].clear()
                        _orient(FI, s, s_hi, s_lo, sp, d_hi, d_lo, dp)
                        _first_packet(FI, FD, rsets, s, flavor, True, ts, flags, window, hdr, payload, s_hi, s_lo,
                                      seq, ack)
                    else:
                        _update_active_idle(FI, FD, s, ts, activity)
                        _add_packet(FI, FD, rsets, s, flavor, ts, flags, window, hdr, payload, s_hi, s_lo, seq,
                                    ack)
                    continue
                if proto == 6 or proto == 17:
                    FI[s, CUM] += FI[s, LAST] - FI[s, START]
                _emit(FI, FD, s, EI, ED, M)
                tomb = (FI[s, SRC_HI], FI[s, SRC_LO], FI[s, DST_HI], FI[s, DST_LO], FI[s, SPORT], FI[s, DPORT],
                        FI[s, FID_A], FI[s, CUM], FI[s, LAST], FI[s, TCP_STATE] * (1 << 32) + FI[s, RSET])
                have_tomb = True
        else:
            s = free[M[M_FREE] - 1]
            M[M_FREE] -= 1
            index[key] = s
        # ---- a new flow in slot s, possibly continuing a previous one of the same 5-tuple (tomb)
        _reset(FI, FD, s, key, proto, itype, icode, flavor)
        fwd = True
        if not have_tomb:
            if flavor == ENGELEN and (flags & F_SYN) and (flags & F_ACK):
                _orient(FI, s, d_hi, d_lo, dp, s_hi, s_lo, sp)
                FI[s, FID_A] = 0 if src_first else 1
                fwd = False
            else:
                _orient(FI, s, s_hi, s_lo, sp, d_hi, d_lo, dp)
                FI[s, FID_A] = 1 if src_first else 0
            if flavor == ENGELEN:
                FI[s, RSET] = M[M_NEXT_RSET]
                M[M_NEXT_RSET] += 1
                rsets[FI[s, RSET]] = Dict.empty(RKEY, types.int8)
        elif flavor == CIC2017:
            # the packet is counted forward, then the flow takes the old flow's endpoints
            _first_packet(FI, FD, rsets, s, flavor, True, ts, flags, window, hdr, payload, s_hi, s_lo, seq, ack)
            _orient(FI, s, tomb[0], tomb[1], tomb[4], tomb[2], tomb[3], tomb[5])
            continue
        else:
            FI[s, FID_A] = tomb[6]
            old_state = tomb[9] >> 32
            old_rset = tomb[9] & 0xFFFFFFFF
            fresh = ((old_state == ST_READY and (flags & F_SYN) != 0)
                     or (proto == 17 and ts - tomb[8] > timeout) or (proto != 6 and proto != 17))
            if fresh:
                if (flags & F_SYN) and (flags & F_ACK):
                    _orient(FI, s, d_hi, d_lo, dp, s_hi, s_lo, sp)
                    fwd = False
                else:
                    _orient(FI, s, s_hi, s_lo, sp, d_hi, d_lo, dp)
                rsets[old_rset].clear()
            else:
                _orient(FI, s, tomb[0], tomb[1], tomb[4], tomb[2], tomb[3], tomb[5])
                fwd = s_hi == tomb[0] and s_lo == tomb[1]
                FI[s, CUM] = tomb[7] + (ts - tomb[8])
            FI[s, RSET] = old_rset
        _first_packet(FI, FD, rsets, s, flavor, fwd, ts, flags, window, hdr, payload, s_hi, s_lo, seq, ack)
    return n


@numba.njit(cache=True, nogil=True)
def expired_slots(now: int, final: bool, P: np.ndarray, FI: np.ndarray, index: Dict) -> np.ndarray:
    """Slots of the flows whose timeout passed by capture time ``now`` (every open flow when ``final``)."""
    timeout = P[P_TIMEOUT]
    out = np.empty(len(index), np.int64)
    k = 0
    for s in index.values():
        if final or now - FI[s, START] > timeout:
            out[k] = s
            k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def retire(slots: np.ndarray, final: bool, P: np.ndarray, M: np.ndarray, FI: np.ndarray, FD: np.ndarray,
           free: np.ndarray, index: Dict, tombs: Dict, rsets: Dict, EI: np.ndarray, ED: np.ndarray) -> None:
    """End the flows in ``slots`` (timed out, or the capture ended when ``final``); ``EI`` has room for all."""
    flavor = P[P_FLAVOR]
    for s in slots:
        key = (FI[s, K0], FI[s, K0 + 1], FI[s, K0 + 2], FI[s, K0 + 3], FI[s, K0 + 4], FI[s, K0 + 5])
        del index[key]
        free[M[M_FREE]] = s
        M[M_FREE] += 1
        if flavor == CIC2017:
            if FI[s, FWD_N] + FI[s, BWD_N] > 1:
                _emit(FI, FD, s, EI, ED, M)
            if not final:
                tombs[key] = (FI[s, SRC_HI], FI[s, SRC_LO], FI[s, DST_HI], FI[s, DST_LO], FI[s, SPORT], FI[s, DPORT],
                              0, 0, FI[s, LAST], 0)
        else:
            if FI[s, PROTO] == 6 or FI[s, PROTO] == 17:
                FI[s, CUM] += FI[s, LAST] - FI[s, START]
            _emit(FI, FD, s, EI, ED, M)
            if final:
                del rsets[FI[s, RSET]]
            else:
                tombs[key] = (FI[s, SRC_HI], FI[s, SRC_LO], FI[s, DST_HI], FI[s, DST_LO], FI[s, SPORT], FI[s, DPORT],
                              FI[s, FID_A], FI[s, CUM], FI[s, LAST], FI[s, TCP_STATE] * (1 << 32) + FI[s, RSET])


@numba.njit(cache=True, nogil=True)
def purge_tombstones(now: int, final: bool, P: np.ndarray, tombs: Dict, rsets: Dict) -> None:
    """Forget tombstones older than the tombstone TTL, and the older half when there are more than the maximum
    (all of them when ``final``)."""
    if final:
        tombs.clear()
        rsets.clear()
        return
    cutoff = now - P[P_TOMB_TTL]
    if len(tombs) > P[P_TOMB_MAX]:
        seen = np.empty(len(tombs), np.int64)
        for k, t in enumerate(tombs.values()):
            seen[k] = t[8]
        cutoff = max(cutoff, np.int64(np.median(seen)))
    old = []
    for key, t in tombs.items():
        if t[8] < cutoff:
            old.append(key)
    for key in old:
        if P[P_FLAVOR] == ENGELEN:
            del rsets[tombs[key][9] & 0xFFFFFFFF]
        del tombs[key]
