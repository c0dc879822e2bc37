"""Alerts as Suricata EVE JSON lines, and the reject file for records that could not be scored.

One line per flow scored at or above the threshold, shaped like an EVE ``alert`` event so Filebeat's Suricata
module, Splunk's or any EVE reader takes it unchanged::

    {"timestamp": "2024-05-01T12:00:00.123456+0000", "flow_id": 90123456789, "event_type": "alert",
     "src_ip": "192.168.10.5", "src_port": 58181, "dest_ip": "192.168.10.3", "dest_port": 53, "proto": "UDP",
     "community_id": "1:...", "alert": {"action": "allowed", "gid": 1, "signature_id": 1990001, "rev": 1,
     "signature": "IOTIDS cnn-lstm: flow classified as attack", "category": "Potentially Bad Traffic",
     "severity": 1}, "score": 0.999, "threshold": 0.5, "model": "cnn-lstm",
     "input": {"file": "flows.csv", "line": 42}}

``timestamp`` is when iotids raised the alert (UTC). ``flow_id`` is a 48-bit hash of the input file and line,
stable across runs. Fields the input does not carry (addresses, ports, protocol) are left out, and so is
``community_id`` unless the 5-tuple is complete. ``severity`` follows the score: 1 at 0.95 and above, 2 at 0.75
and above, else 3. With ``all_flows``, benign verdicts are written too, as ``event_type: "flow"`` lines without
``alert``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import BinaryIO, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iotids.stream.community_id import (
    ICMP,
    ICMP4_COUNTERPART,
    ICMP6,
    ICMP6_COUNTERPART,
    community_id_packed,
    community_id_v1_mapped,
    pack_address,
)
from iotids.stream.records import BadRecord, FlowBlock

SIGNATURE_ID = 1990001  # in Suricata's range for local rules
CATEGORY = "Potentially Bad Traffic"
PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "IPv6-ICMP", 132: "SCTP"}
#: The EVE 5-tuple fields (each written when the input carries it).
EVE_TUPLE = ("src_ip", "src_port", "dest_ip", "dest_port", "proto")

log = logging.getLogger("iotids.stream")


def severity(scores: np.ndarray) -> np.ndarray:
    """EVE severity (1 high .. 3 low) of scores at or above the threshold: 1 from 0.95, 2 from 0.75, else 3."""
    return np.where(scores >= 0.95, 1, np.where(scores >= 0.75, 2, 3))


def eve_timestamp(moment: datetime | None = None) -> str:
    """Suricata's timestamp format: ``2024-05-01T12:00:00.123456+0000``."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class AlertWriter:
    """Writes EVE alert lines (and, with ``all_flows``, benign verdicts) for scored batches.

    The lines of a batch are assembled column-wise with Arrow string kernels and written in one call, so the
    cost per alert stays around a few microseconds; only the SHA-1 of the Community ID is computed row by row.
    :meth:`format` may run in several threads at once (the stream formats batches in its scoring threads);
    :meth:`write_lines` writes in the caller's order.

    Parameters
    ----------
    out : a binary stream; it is flushed after every batch so a follower sees alerts at once.
    model : the model's name, written in every line and in the signature.
    threshold : scores at or above it are alerts.
    """

    def __init__(self, out: BinaryIO, *, model: str, threshold: float, all_flows: bool = False) -> None:
        self.out, self.model, self.threshold, self.all_flows = out, model, float(threshold), all_flows
        signature = json.dumps(f"IOTIDS {model}: flow classified as attack")
        self._alert_head = (
            f',"alert":{{"action":"allowed","gid":1,"signature_id":{SIGNATURE_ID},"rev":1,'
            f'"signature":{signature},"category":{json.dumps(CATEGORY)},"severity":'
        )
        self._threshold_model = f',"threshold":{self.threshold!r},"model":{json.dumps(model)},"input":{{"file":'
        self._packed: dict[str, bytes | None] = {}
        self._salts: dict[str, int] = {}

    def write(self, batch: FlowBlock, scores: np.ndarray) -> int:
        """Write the lines of one scored batch; return how many alerts it raised."""
        lines, alerts = self.format(batch, scores)
        self.write_lines(lines)
        return alerts

    def format(self, batch: FlowBlock, scores: np.ndarray) -> tuple[memoryview | None, int]:
        """The lines of one scored batch (None when there are none) and how many alerts it raised."""
        hits = scores >= self.threshold
        rows = np.arange(len(batch)) if self.all_flows else np.flatnonzero(hits)
        if not len(rows):
            return None, 0
        lines = self._lines(batch, scores[rows], hits[rows], rows)
        offsets = np.frombuffer(lines.buffers()[1], np.int32)
        text = memoryview(lines.buffers()[2])[offsets[lines.offset]:offsets[lines.offset + len(lines)]]
        return text, int(hits.sum())

    def write_lines(self, lines: memoryview | None) -> None:
        """Write (and flush) lines made by :meth:`format`."""
        if lines is not None:
            self.out.write(lines)
            self.out.flush()

    def _lines(self, batch: FlowBlock, scores: np.ndarray, hits: np.ndarray, rows: np.ndarray) -> pa.Array:
        """One JSON line (with its newline) per row, as an Arrow string array."""
        take = pa.array(rows)
        src = _json_strings(batch.text["src_ip"].take(take)) if "src_ip" in batch.text else None
        dst = _json_strings(batch.text["dst_ip"].take(take)) if "dst_ip" in batch.text else None
        number = {k: _whole(batch.numbers.get(k), rows, top) for k, top in
                  (("src_port", 65535), ("dst_port", 65535), ("protocol", 255), ("icmp_type", 255),
                   ("icmp_code", 255))}
        proto = number["protocol"]
        parts: list[pa.Array | str] = [
            f'{{"timestamp":"{eve_timestamp()}","flow_id":',
            _string(self._flow_ids(batch.source, batch.lines[rows])),
            ',"event_type":', pc.if_else(pa.array(hits), '"alert"', '"flow"'),
            *_field(',"src_ip":', src), *_field(',"src_port":', _string(number["src_port"])),
            *_field(',"dest_ip":', dst), *_field(',"dest_port":', _string(number["dst_port"])),
            *_field(',"proto":"', None if proto is None else _texts()[0].take(pa.array(proto, mask=proto < 0)),
                    '"'),
        ]
        if src is not None and dst is not None and proto is not None:
            ids = self._community_ids(batch.text["src_ip"].take(take), batch.text["dst_ip"].take(take), number)
            parts += _field(',"community_id":"', ids, '"')
        severity_text = _texts()[1].take(pa.array(severity(scores), mask=~hits))  # null: no alert object
        parts += [
            *_field(self._alert_head, severity_text, "}"),
            ',"score":', pc.cast(pc.round(pa.array(scores.astype(np.float64)), 6), pa.string()),
            self._threshold_model, json.dumps(batch.source), ',"line":',
            pc.cast(pa.array(batch.lines[rows]), pa.string()), "}}\n",
        ]
        return pc.binary_join_element_wise(*parts, "")

    def _flow_ids(self, source: str, lines: np.ndarray) -> np.ndarray:
        """48-bit ids, stable per (input, line): splitmix64 of the line number salted by the input's name."""
        salt = self._salts.get(source)
        if salt is None:
            salt = self._salts[source] = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest())
        with np.errstate(over="ignore"):
            z = lines.astype(np.uint64) + np.uint64(salt) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z ^= z >> np.uint64(31)
        return (z & np.uint64((1 << 48) - 1)).astype(np.int64)

    def _pack(self, addresses: list[str | None]) -> list[bytes | None]:
        cache = self._packed
        if len(cache) > 100_000:
            cache.clear()
        out = []
        for address in addresses:
            if address is None:
                out.append(None)
                continue
            packed = cache.get(address, b"")
            if packed == b"":
                packed = cache[address] = pack_address(address)
            out.append(packed)
        return out

    def _community_ids(self, src: pa.Array, dst: pa.Array, number: dict[str, np.ndarray | None]) -> pa.Array:
        """Community IDs (null where the tuple is incomplete): IPv4 TCP/UDP/SCTP/ICMP rows vectorised."""
        proto = number["protocol"]
        assert proto is not None
        first, second, one_way = _ports_for_id(proto, number)
        (s4, s_ok), (d4, d_ok) = _ipv4(src), _ipv4(dst)
        out = np.zeros(len(src), f"S{_ID_CHARS}")
        with_ports = np.isin(proto, (ICMP, ICMP6, 6, 17, 132))
        fast = s_ok & d_ok & with_ports & (first >= 0) & (second >= 0)
        known = fast.copy()
        if fast.any():
            out[fast] = _community_v4(s4[fast], d4[fast], proto[fast], first[fast], second[fast], one_way[fast])
        slow = np.flatnonzero(~fast & (proto >= 0))  # IPv6, protocols without ports, odd text: one at a time
        if len(slow):
            picked = pa.array(slow)
            saddr = self._pack(src.take(picked).to_pylist())
            daddr = self._pack(dst.take(picked).to_pylist())
            for i, s, d in zip(slow.tolist(), saddr, daddr, strict=True):
                if s is None or d is None or len(s) != len(d):
                    continue
                if not with_ports[i]:
                    out[i] = community_id_packed(s, d, int(proto[i]))
                elif first[i] >= 0 and second[i] >= 0:
                    out[i] = community_id_v1_mapped(s, d, int(proto[i]), int(first[i]), int(second[i]),
                                                    bool(one_way[i]))
                else:
                    continue
                known[i] = True
        # the ids are fixed-width ASCII: one Arrow string array straight from the bytes, no Python strings
        offsets = np.arange(0, (len(out) + 1) * _ID_CHARS, _ID_CHARS, dtype=np.int32)
        return pa.StringArray.from_buffers(len(out), pa.py_buffer(offsets), pa.py_buffer(out.tobytes()),
                                           pa.array(known).buffers()[1])


def _ipv4(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Dotted-quad IPv4 strings as uint32, and which rows are one (anything else, null included, is not).

    Each distinct address is parsed once: a network's flows share few addresses.
    """
    encoded = text.cast(pa.string()).dictionary_encode(null_encoding="encode")
    value, valid = _ipv4_distinct(encoded.dictionary)
    codes = encoded.indices.to_numpy()
    return value[codes], valid[codes]


def _ipv4_distinct(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    n = len(text)
    value, valid = np.zeros(n, np.uint32), np.zeros(n, bool)
    parts = pc.split_pattern(text.cast(pa.string()).fill_null(""), ".")
    four = np.flatnonzero(pc.equal(pc.list_value_length(parts), 4).to_numpy(zero_copy_only=False))
    if not len(four):
        return value, valid
    octets = pc.list_flatten(parts.take(pa.array(four)))
    digits = pc.and_(pc.utf8_is_digit(octets), pc.less_equal(pc.utf8_length(octets), 3))
    numbers = pc.cast(pc.if_else(digits, octets, "999"), pa.int64()).to_numpy().reshape(-1, 4)
    ok = (numbers <= 255).all(axis=1)
    value[four] = ((numbers[:, 0] << 24) | (numbers[:, 1] << 16) | (numbers[:, 2] << 8) | numbers[:, 3]).astype(
        np.uint32)
    valid[four] = ok
    return value, valid


@functools.cache
def _texts() -> tuple[pa.Array, pa.Array]:
    """Protocol names by number and severities as text; built on first use, as pyarrow's first ``pa.array``
    imports pandas (0.3 s): then it happens in a scoring thread while the reader parses, not before the start."""
    return (pa.array([PROTOCOL_NAMES.get(p, str(p)) for p in range(256)], pa.string()),
            pa.array(["", "1", "2", "3"], pa.string()))


_ID_CHARS = 30  # "1:" + the base64 of a 20-byte SHA-1
_COUNTER_V4 = np.full(256, -1, np.int64)
_COUNTER_V6 = np.full(256, -1, np.int64)
for _a, _b in ICMP4_COUNTERPART.items():
    _COUNTER_V4[_a] = _b
for _a, _b in ICMP6_COUNTERPART.items():
    _COUNTER_V6[_a] = _b


def _ports_for_id(proto: np.ndarray, number: dict[str, np.ndarray | None]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first port, second port, one-way) per row as the Community ID hashes them; -1 where unknown.

    TCP/UDP/SCTP use the ports; ICMP/ICMPv6 the type and, for request/response types, the counterpart type
    (else the code, and the flow is one-way).
    """
    n = len(proto)

    def known(key: str) -> np.ndarray:
        values = number[key]
        return np.full(n, -1, np.int64) if values is None else values

    with_ports = np.isin(proto, (6, 17, 132))
    first = np.where(with_ports, known("src_port"), -1)
    second = np.where(with_ports, known("dst_port"), -1)
    one_way = np.zeros(n, bool)
    mtype, mcode = known("icmp_type"), known("icmp_code")
    for proto_number, table in ((ICMP, _COUNTER_V4), (ICMP6, _COUNTER_V6)):
        rows = (proto == proto_number) & (mtype >= 0) & (mcode >= 0)
        counter = table[np.clip(mtype, 0, 255)]
        first = np.where(rows, mtype, first)
        second = np.where(rows, np.where(counter >= 0, counter, mcode), second)
        one_way |= rows & (counter < 0)
    return first, second, one_way


def _community_v4(s: np.ndarray, d: np.ndarray, proto: np.ndarray, sport: np.ndarray, dport: np.ndarray,
                  one_way: np.ndarray) -> np.ndarray:
    """Community IDs (``S30``) of IPv4 rows with ports (or ICMP type/code), vectorised but for the SHA-1."""
    swap = ~one_way & ~((s < d) | ((s == d) & (sport < dport)))
    record = np.zeros(len(s), np.dtype([("seed", ">u2"), ("s", ">u4"), ("d", ">u4"), ("p", "u1"), ("z", "u1"),
                                        ("sp", ">u2"), ("dp", ">u2")]))
    record["s"], record["d"] = np.where(swap, d, s), np.where(swap, s, d)
    record["sp"], record["dp"] = np.where(swap, dport, sport), np.where(swap, sport, dport)
    record["p"] = proto
    sha1 = hashlib.sha1
    digests = np.zeros((len(s), 21), np.uint8)
    digests[:, :20] = np.frombuffer(b"".join([sha1(r).digest() for r in record.view("V16").tolist()]),
                                    np.uint8).reshape(-1, 20)
    # base64 of 21 bytes (20 + a zero byte) = the digest's 27 characters + "A"; the last becomes "="
    text = np.frombuffer(base64.b64encode(digests.tobytes()), "S28").copy()
    chars = text.view("S1").reshape(len(s), 28)
    chars[:, 27] = b"="
    return np.char.add(b"1:", text)


def _whole(values: np.ndarray | None, rows: np.ndarray, top: int) -> np.ndarray | None:
    """Whole numbers in [0, top] at ``rows`` as int64, -1 where unknown or out of range; None if no column."""
    if values is None:
        return None
    picked = values[rows]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(picked) & (picked >= 0) & (picked <= top) & (picked == np.floor(picked))
    return np.where(valid, picked, -1).astype(np.int64)


def _string(values: np.ndarray | None) -> pa.Array | None:
    """Decimal text of non-negative integers; null where -1 (unknown)."""
    if values is None:
        return None
    return pc.cast(pa.array(values, mask=values < 0), pa.string())


def _field(prefix: str, values: pa.Array | None, suffix: str = "") -> list[pa.Array | str]:
    """The parts of ``prefix + value + suffix`` per row, "" where the value is null (the field is left out)."""
    if values is None:
        return []
    if not values.null_count:  # the common case: the parts join the line's single join
        return [prefix, values, suffix]
    return [pc.fill_null(pc.binary_join_element_wise(prefix, values, suffix, ""), "")]


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_strings(values: pa.Array) -> pa.Array:
    """JSON string literals (quoted) of a string array, made once per distinct value; nulls stay null."""
    encoded = values.cast(pa.string()).dictionary_encode()
    return _json_distinct(encoded.dictionary).take(encoded.indices)


def _json_distinct(values: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return pa.array([None if v is None else json.dumps(v) for v in values.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', values, '"', "")


class RejectWriter:
    """Records that could not be scored, one JSON line each: ``{"file", "line", "reason", "raw"}``.

    The first ``log_first`` are also logged (warning, with file and line); the rest are only counted.
    """

    def __init__(self, out: TextIO | None, *, log_first: int = 20) -> None:
        self.out, self.log_first, self.count = out, log_first, 0

    def write(self, bad: list[BadRecord]) -> None:
        for record in bad:
            self.count += 1
            if self.count <= self.log_first:
                log.warning("%s:%d: %s", record.source, record.line, record.reason)
                if self.count == self.log_first:
                    log.warning("further bad records are counted, not logged")
        if self.out is not None and bad:
            self.out.write("".join(json.dumps(r.to_dict()) + "\n" for r in bad))
            self.out.flush()
