"""The flow state machine on synthetic packets: termination, timeouts, quirks of each flavour, streaming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from iotids.errors import InvalidParameterError
from iotids.flows import ExtractStats, FlowTable, iter_flow_tables, iter_flows
from iotids.flows.decode import decode
from iotids.flows.extract import _frames_from_iterable

from .packets import ACK, FIN, PSH, RST, SYN, Frame, icmp, tcp, udp, write_pcap

C, S = "10.0.0.1", "10.0.0.2"  # client, server


def handshake(t: float, sport: int = 40000) -> list[Frame]:
    return [tcp(t, C, sport, S, 80, SYN, win=501, seq=0), tcp(t + 0.01, S, 80, C, sport, SYN | ACK, win=502, ack=1),
            tcp(t + 0.02, C, sport, S, 80, ACK, win=503, ack=1)]


def flows_of(frames: list[Frame], flavor: str, **options: object) -> list[dict]:
    return list(iter_flows(iter(frames), flavor=flavor, **options))


def test_cicids2017_first_fin_ends_the_flow_and_quirks() -> None:
    frames = [*handshake(0.0), tcp(0.03, C, 40000, S, 80, PSH | ACK, b"x" * 100),
              tcp(0.04, S, 80, C, 40000, PSH | ACK, b"y" * 10, win=900), tcp(0.05, C, 40000, S, 80, FIN | ACK),
              tcp(0.06, S, 80, C, 40000, FIN | ACK, win=700), tcp(0.07, C, 40000, S, 80, ACK)]
    flows = flows_of(frames, "cicids2017")
    assert len(flows) == 2  # the first FIN ends a 6-packet flow; the server's FIN + last ACK form a new one
    first = next(f for f in flows if f["fwd_packets"] + f["bwd_packets"] == 6)
    assert (first["src_ip"], first["src_port"], first["dst_port"]) == (C, 40000, 80)
    assert first["fwd_packets"] == 4 and first["bwd_packets"] == 2
    assert first["flow_duration"] == 50_000
    # flags of the first packet only, in HashMap order: the SYN lands in "PSH Flag Count"
    assert first["psh_flag_count"] == 1 and first["syn_flag_count"] == 0 and first["fin_flag_count"] == 0
    assert first["bwd_init_win_bytes"] == 900  # the last backward packet's window
    assert first["pkt_len_mean"] == pytest.approx(110 / 7)  # the first packet counted twice
    assert first["avg_packet_size"] == pytest.approx(110 / 6)
    assert first["subflow_fwd_bytes"] == first["fwd_bytes"] == 100
    assert first["down_up_ratio"] == 0.0  # integer division 2 // 4
    second = next(f for f in flows if f is not first)
    assert (second["src_ip"], second["fwd_packets"], second["bwd_packets"]) == (S, 1, 1)


def test_cicids2017_drops_one_packet_flows_and_times_out() -> None:
    frames = [tcp(0.0, C, 1, S, 80, SYN), tcp(1.0, S, 80, C, 1, SYN | ACK),  # 2 packets, then 120 s pass
              tcp(130.0, S, 80, C, 1, ACK), tcp(131.0, C, 1, S, 80, ACK),  # continues the connection
              udp(5.0, C, 53, S, 53, b"q")]  # a lone packet: dropped
    flows = sorted(flows_of(frames, "cicids2017"), key=lambda f: f["timestamp"])
    assert [f["fwd_packets"] + f["bwd_packets"] for f in flows] == [2, 2]
    # after a timeout the new flow takes the old direction (source C), yet its first packet, sent by S, counts
    # forward (BasicFlow.firstPacket runs before the endpoints are copied); C's packet is forward too
    later = flows[1]
    assert (later["src_ip"], later["fwd_packets"], later["bwd_packets"]) == (C, 2, 0)


def test_engelen_tcp_termination_and_new_connection() -> None:
    # (source, seq, ack, length, window) identify a segment for the retransmission count
    frames = [*handshake(0.0), tcp(0.03, C, 40000, S, 80, PSH | ACK, b"abc", seq=10),
              tcp(0.035, C, 40000, S, 80, PSH | ACK, b"abc", seq=10),  # the same segment again
              tcp(0.04, C, 40000, S, 80, FIN | ACK, seq=13), tcp(0.05, S, 80, C, 40000, FIN | ACK, ack=14),
              tcp(0.06, C, 40000, S, 80, ACK, seq=14, ack=2),  # both FINs and the last ACK: ready to end
              tcp(0.07, C, 40000, S, 80, ACK, seq=14, ack=3),  # still added: the flow ends at the next SYN
              *handshake(10.0), tcp(10.03, S, 80, C, 40000, RST | ACK, seq=5)]
    flows = sorted(flows_of(frames, "engelen2021"), key=lambda f: f["timestamp"])
    assert len(flows) == 2
    first, second = flows
    assert first["fwd_packets"] + first["bwd_packets"] == 9
    assert first["fin_flag_count"] == 2 and first["syn_flag_count"] == 2
    assert first["fwd_tcp_retrans_count"] == 1 and first["total_tcp_retrans_count"] == 1
    assert first["total_tcp_flow_time"] == first["flow_duration"] == 70_000
    assert first["fwd_psh_flags"] == 2 and first["fwd_act_data_pkts"] == 2
    assert second["bwd_rst_flags"] == 1 and second["rst_flag_count"] == 1
    assert first["flow_id"] == second["flow_id"] == f"{C}-{S}-40000-80-6"


def test_engelen_timeout_continues_the_connection() -> None:
    frames = [*handshake(0.0), tcp(100.0, C, 40000, S, 80, ACK), tcp(125.0, S, 80, C, 40000, ACK)]
    first, second = sorted(flows_of(frames, "engelen2021"), key=lambda f: f["timestamp"])
    assert first["total_tcp_flow_time"] == 100_000_000
    assert second["src_ip"] == C and second["bwd_packets"] == 1  # same direction as the connection
    assert second["total_tcp_flow_time"] == 125_000_000  # 100 s + the 25 s gap + 0 s of its own


def test_engelen_icmp_type_and_code() -> None:
    frames = [icmp(0.0, C, S, 8), icmp(0.1, S, C, 0), icmp(1.0, C, S, 8), icmp(2.0, S, C, 3, 3)]
    flows = sorted(flows_of(frames, "engelen2021"), key=lambda f: f["timestamp"])
    assert [(f["icmp_type"], f["icmp_code"], f["fwd_packets"], f["bwd_packets"]) for f in flows] == \
        [(8, 0, 2, 1), (3, 3, 1, 0)]
    assert flows[1]["flow_id"] == f"{C}-{S}-0-0-1"  # the 5-tuple's first direction, kept
    cic = flows_of(frames, "cicids2017")
    assert [(f["protocol"], f["fwd_packets"], f["bwd_packets"]) for f in cic] == [(0, 2, 2)]


def test_ipv6_flows() -> None:
    a, b = "2001:db8::1", "2001:db8::2"
    frames = [tcp(0.0, a, 5000, b, 443, SYN), tcp(0.1, b, 443, a, 5000, SYN | ACK),
              tcp(0.2, a, 5000, b, 443, PSH | ACK, b"hello"), udp(0.3, b, 53, a, 5353, b"dns!")]
    flows = {f["protocol"]: f for f in flows_of(frames, "engelen2021")}
    assert (flows[6]["src_ip"], flows[6]["dst_ip"], flows[6]["fwd_bytes"]) == (a, b, 5)
    assert flows[17]["flow_id"] == f"{b}-{a}-53-5353-17" and flows[17]["fwd_bytes"] == 4


def test_reorder_window_sorts_by_time() -> None:
    frames = [tcp(0.5, S, 80, C, 40000, SYN | ACK), tcp(0.2, C, 40000, S, 80, SYN), tcp(0.9, C, 40000, S, 80, ACK)]
    stats = ExtractStats()
    (sorted_flow,) = flows_of(frames, "cicids2017", stats=stats)
    assert sorted_flow["src_ip"] == C and stats.late == 0
    stats = ExtractStats()
    (file_order,) = flows_of(frames, "cicids2017", reorder_window=0.0, stats=stats)
    assert file_order["src_ip"] == S and stats.late == 1


def test_flows_stream_out_before_the_capture_ends() -> None:
    consumed: list[int] = []

    def live() -> Iterator[Frame | None]:
        for i in range(50):
            t = i * 0.1
            consumed.append(i)
            yield from [tcp(t, C, 1000 + i, S, 80, SYN), tcp(t + 0.01, C, 1000 + i, S, 80, FIN | ACK)]
            yield None  # a capture timeout: process what is held
        yield udp(500.0, C, 1, S, 2, b"later")  # the clock moves past the reorder window

    seen = []
    for table in iter_flow_tables(live(), flavor="cicids2017", batch_size=8):
        seen.append((table.num_rows, len(consumed)))
    assert sum(n for n, _ in seen) == 50
    assert seen[0][1] < 50  # the first flows came out while the capture was still running


def test_open_flows_stay_bounded(tmp_path: Path) -> None:
    frames = []
    for i in range(3000):  # one short connection every 10 ms for 30 s, each closed by a FIN
        t = i * 0.01
        frames += [tcp(t, C, 2000 + i % 20000, S, 80, SYN), tcp(t + 0.001, C, 2000 + i % 20000, S, 80, FIN)]
    table = FlowTable("cicids2017")
    peak = 0
    for batch in _frames_from_iterable(frames, 1, 256):
        table.feed(decode(batch))
        peak = max(peak, table.open_flows)
    assert peak <= 1


def test_parameters_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="flavor"):
        iter_flow_tables([], flavor="cicflowmeter")
    with pytest.raises(InvalidParameterError, match="flow_timeout"):
        iter_flow_tables([], flow_timeout=0)
    with pytest.raises(InvalidParameterError, match="reorder_window"):
        iter_flow_tables([], reorder_window=-1)


def test_files_are_separate_captures(tmp_path: Path) -> None:
    one = write_pcap(tmp_path / "a.pcap", [tcp(0.0, C, 1, S, 80, SYN)])
    two = write_pcap(tmp_path / "b.pcap", [tcp(0.1, S, 80, C, 1, SYN | ACK)])
    assert flows_of([], "engelen2021") == []
    assert len(list(iter_flows([one, two], flavor="engelen2021"))) == 2


@pytest.mark.parametrize(("ttl", "source"), [(600.0, C), (10.0, S)])
def test_tombstones_keep_the_direction_for_their_ttl(ttl: float, source: str) -> None:
    frames = [tcp(0.0, C, 1, S, 80, SYN), tcp(1.0, S, 80, C, 1, SYN | ACK),
              udp(130.0, "10.9.9.9", 5, S, 5), udp(200.0, "10.9.9.9", 6, S, 6),  # other traffic moves the clock
              tcp(201.0, S, 80, C, 1, ACK), tcp(202.0, C, 1, S, 80, ACK)]
    flows = flows_of(frames, "cicids2017", reorder_window=0.0, batch_size=1, tombstone_ttl=ttl)
    later = [f for f in flows if f["protocol"] == 6 and f["timestamp"].timestamp() > 100]
    assert [f["src_ip"] for f in later] == [source]


def test_tombstones_are_capped() -> None:
    frames = [udp(i * 0.01, C, 1000 + i, S, 53, b"q") for i in range(100)] + [udp(200.0, C, 1, S, 2)]
    table = FlowTable("engelen2021", max_tombstones=10)
    emitted = 0
    for batch in _frames_from_iterable(frames, 1, 1000):
        out = table.feed(decode(batch))
        emitted += 0 if out is None else out.num_rows
    assert emitted == 100 and table.open_flows == 1
    assert len(table.tombs) <= 50 and len(table.rsets) == len(table.tombs) + 1
