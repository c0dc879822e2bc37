"""Capture files: formats, link types, damaged records and odd packets (counted, never fatal)."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import numpy as np
import pytest

from iotids.errors import DataFormatError
from iotids.flows import ExtractStats, iter_flows

from .packets import SYN, tcp, udp, write_pcap, write_pcapng

C, S = "10.0.0.1", "10.0.0.2"


def extract(path: Path, flavor: str = "engelen2021") -> tuple[list[dict], ExtractStats]:
    stats = ExtractStats()
    return list(iter_flows(path, flavor=flavor, stats=stats)), stats


@pytest.mark.parametrize("writer", ["pcapng", "big-endian-ns", "little-endian-us"])
def test_formats(tmp_path: Path, writer: str) -> None:
    frames = [tcp(1.000001, C, 1, S, 80, SYN), udp(2.5, C, 53, S, 53, b"abcd")]
    if writer == "pcapng":
        path = write_pcapng(tmp_path / "c.pcapng", frames)
    else:
        path = write_pcap(tmp_path / "c.pcap", frames, big_endian=writer.startswith("big"),
                          nanosecond=writer.endswith("ns"))
    flows, stats = extract(path)
    assert sorted((f["protocol"], f["timestamp"].timestamp()) for f in flows) == [(6, 1.000001), (17, 2.5)]
    assert stats.frames == stats.packets == 2


def _ip_bytes(frame: bytes) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(frame).data)


@pytest.mark.parametrize("linktype", [101, 113, 276, 0, "vlan"])
def test_link_types(tmp_path: Path, linktype: int | str) -> None:
    ts, frame = tcp(1.0, C, 1, S, 80, SYN, b"data")
    ip = _ip_bytes(frame)
    if linktype == 101:
        raw = ip
    elif linktype == 113:
        raw = struct.pack(">HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + ip
    elif linktype == 276:
        raw = struct.pack(">HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\0" * 8) + ip
    elif linktype == 0:
        raw = struct.pack("<I", 2) + ip
    else:
        raw = frame[:12] + struct.pack(">HH", 0x8100, 7) + frame[12:]
        linktype = 1
    flows, stats = extract(write_pcap(tmp_path / "l.pcap", [(ts, raw)], linktype=int(linktype)))
    assert [(f["src_ip"], f["dst_port"], f["fwd_bytes"]) for f in flows] == [(C, 80, 4)]
    assert stats.linktypes == {int(linktype): 1}


def test_damaged_records_and_headers_are_counted(tmp_path: Path) -> None:
    good = tcp(1.0, C, 1, S, 80, SYN)
    ts, frame = tcp(1.1, C, 2, S, 80, SYN)
    cut_short = (ts, frame[:30])  # ends inside the IP header
    tso = bytearray(tcp(1.2, C, 3, S, 80, SYN)[1])
    tso[16:18] = b"\0\0"  # IPv4 total length 0, as captured TSO segments have
    arp = (1.3, bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=b"\0" * 28)))
    path = write_pcap(tmp_path / "d.pcap", [good, cut_short, (1.2, bytes(tso)), arp, good])
    path.write_bytes(path.read_bytes()[:-7])  # the last record is cut short too
    flows, stats = extract(path)
    assert stats.frames == 4 and stats.packets == 1 and stats.truncated_files == 1
    assert stats.skipped == {"truncated": 1, "bad_ip": 1, "non_ip": 1}
    assert len(flows) == 1


def test_not_a_capture(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DataFormatError, match="not a capture file"):
        extract(text)
    with pytest.raises(DataFormatError, match="cannot open"):
        extract(tmp_path / "missing.pcap")


def test_every_loose_capture(shared_data: Path) -> None:
    """The loose real captures: all read, odd packets counted and kept out of (or in) flows as they should."""
    files = sorted((shared_data / "pcap" / "unlabelled").glob("*.pcap"))
    assert len(files) == 22
    results = {}
    for path in files:
        for flavor in ("cicids2017", "engelen2021"):
            flows, stats = extract(path, flavor)
            assert stats.frames == stats.packets + sum(stats.skipped.values()), path.name
            assert stats.truncated_files == 0
            results[path.name, flavor] = flows, stats
    arp_flows, arp = results["pcaphunt_hs-arpScan.pcap", "engelen2021"]
    assert arp_flows == [] and arp.skipped == {"non_ip": 509}
    gre_flows, gre = results["ivre_gre-sample.pcap", "cicids2017"]
    assert gre.other_protocol == 40 and {f["protocol"] for f in gre_flows} == {0}
    _, boot = results["ivre_nb6-startup.pcap", "engelen2021"]  # mostly non-IP, clock jumps from 1970 to 2014
    assert boot.skipped["non_ip"] == 371
    icmp_flows, _ = results["pcaphunt_hs-icmpScan.pcap", "engelen2021"]  # echo requests to 256 hosts
    assert len(icmp_flows) == 256 and {(f["protocol"], f["icmp_type"], f["icmp_code"]) for f in icmp_flows} == \
        {(1, 8, 0)}
    syn_flows, _ = results["stopddos_pkt.TCP.synflood.spoofed.pcap", "engelen2021"]
    assert sum(f["fwd_packets"] + f["bwd_packets"] for f in syn_flows) == 37841  # every packet counted
    _, old = results["stopddos_pkt.TCP.synflood.spoofed.pcap", "cicids2017"]
    assert old.flows < 1000  # the 2017 tool drops the spoofed one-packet flows


def test_garbled_frames_never_crash(tmp_path: Path) -> None:
    """Frames with valid starts and random tails or random cuts: decoded or counted, both flavours."""
    rng = np.random.default_rng(7)
    frames = []
    templates = [tcp(0, C, 1, S, 80, SYN, b"x" * 20)[1], udp(0, C, 53, S, 53, b"y" * 8)[1],
                 udp(0, "fe80::1", 1, "fe80::2", 2, b"z")[1]]
    for i in range(3000):
        base = bytearray(templates[i % 3])
        cut = int(rng.integers(0, len(base) + 1))
        noise = rng.integers(0, 256, size=int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        start = int(rng.integers(12, len(base)))
        base[start:] = noise
        frames.append((i * 0.01, bytes(base[: max(cut, 1)]) if i % 2 else bytes(base)))
    path = write_pcap(tmp_path / "garbled.pcap", frames)
    for flavor in ("cicids2017", "engelen2021"):
        _, stats = extract(path, flavor)
        assert stats.frames == 3000 == stats.packets + sum(stats.skipped.values())
