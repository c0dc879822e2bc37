"""Finished flows as an Arrow table: identifiers (Flow ID, endpoints, protocol, start time) and features.

The Flow ID is CICFlowMeter's ``ip-ip-port-port-protocol``. ``cicids2017`` orders the two endpoints by comparing
the address bytes as Java's signed bytes (so 188.x comes before 10.x); ``engelen2021`` keeps the direction of
the first packet ever seen for the 5-tuple (its flow-table key).
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iotids.flows import engine as E

_V4_TAG = np.uint64(0xFFFF)
_SIGN_FLIP = np.uint64(0x8080_8080_8080_8080)

IDENTIFIER_FIELDS = (
    pa.field("flow_id", pa.string()), pa.field("src_ip", pa.string()), pa.field("src_port", pa.int32()),
    pa.field("dst_ip", pa.string()), pa.field("dst_port", pa.int32()), pa.field("protocol", pa.int16()),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
)


def format_addresses(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """Text of IPv4 (stored IPv4-mapped) and IPv6 addresses."""
    hi = hi.view(np.uint64)
    lo = lo.view(np.uint64)
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == _V4_TAG)
    octets = [pc.cast(pa.array(((lo >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64)), pa.string())
              for shift in (24, 16, 8, 0)]
    text = pc.binary_join_element_wise(*octets, ".")
    if v4.all():
        return text
    rows = np.flatnonzero(~v4)
    v6 = [str(ipaddress.IPv6Address((int(hi[i]) << 64) | int(lo[i]))) for i in rows]
    values = text.to_pylist()
    for i, value in zip(rows, v6, strict=True):
        values[i] = value
    return pa.array(values, pa.string())


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values.astype(np.int64)), pa.string())


def flows_table(EI: np.ndarray, features: dict[str, np.ndarray], flavor: str) -> pa.Table:
    """Identifier columns for finished flow rows ``EI`` followed by their ``features``."""
    src = format_addresses(EI[:, E.SRC_HI], EI[:, E.SRC_LO])
    dst = format_addresses(EI[:, E.DST_HI], EI[:, E.DST_LO])
    protocol = EI[:, E.PROTO]
    if flavor == "cicids2017":
        # BasicPacketInfo.generateFlowId: the first differing address byte, compared as a signed byte
        s_hi, s_lo = EI[:, E.SRC_HI].view(np.uint64) ^ _SIGN_FLIP, EI[:, E.SRC_LO].view(np.uint64) ^ _SIGN_FLIP
        d_hi, d_lo = EI[:, E.DST_HI].view(np.uint64) ^ _SIGN_FLIP, EI[:, E.DST_LO].view(np.uint64) ^ _SIGN_FLIP
        src_first = (s_hi < d_hi) | ((s_hi == d_hi) & (s_lo <= d_lo))
        first_ip = pc.if_else(pa.array(src_first), src, dst)
        second_ip = pc.if_else(pa.array(src_first), dst, src)
        first_port = np.where(src_first, EI[:, E.SPORT], EI[:, E.DPORT])
        second_port = np.where(src_first, EI[:, E.DPORT], EI[:, E.SPORT])
    else:
        # the key's endpoint A is the flow's source or destination; FID_A says whether A comes first
        src_is_a = (EI[:, E.SRC_HI] == EI[:, E.K0]) & (EI[:, E.SRC_LO] == EI[:, E.K0 + 1]) & \
            (EI[:, E.SPORT] == EI[:, E.K0 + 4] >> 16)
        src_first = src_is_a == (EI[:, E.FID_A] == 1)
        first_ip = pc.if_else(pa.array(src_first), src, dst)
        second_ip = pc.if_else(pa.array(src_first), dst, src)
        first_port = np.where(src_first, EI[:, E.SPORT], EI[:, E.DPORT])
        second_port = np.where(src_first, EI[:, E.DPORT], EI[:, E.SPORT])
    flow_id = pc.binary_join_element_wise(first_ip, second_ip, _int_text(first_port), _int_text(second_port),
                                          _int_text(protocol), "-")
    columns: dict[str, pa.Array] = {
        "flow_id": flow_id,
        "src_ip": src,
        "src_port": pa.array(EI[:, E.SPORT].astype(np.int32)),
        "dst_ip": dst,
        "dst_port": pa.array(EI[:, E.DPORT].astype(np.int32)),
        "protocol": pa.array(protocol.astype(np.int16)),
        "timestamp": pa.array(EI[:, E.START]).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
    }
    for name, values in features.items():
        columns[name] = pa.array(values)
    return pa.table(columns)
