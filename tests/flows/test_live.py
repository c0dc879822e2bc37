"""Live capture on the loopback interface: frames -> flows, and the CLI's errors (no network needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from iotids.errors import InvalidParameterError
from iotids.flows import iter_flow_tables
from iotids.flows.live import iter_live_frames

CLI = [sys.executable, "-c", "from iotids.cli import main; main()"]
# two loopback addresses: CICFlowMeter tells a flow's directions apart by IP address, so with one address on
# both ends every packet would count as forward
CLIENT, SERVER = "127.0.0.1", "127.0.0.2"


def _capture_allowed() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003)).close()
    except (AttributeError, OSError):
        return False
    return True


@pytest.mark.skipif(not _capture_allowed(), reason="AF_PACKET capture on 'lo' needs Linux and root/CAP_NET_RAW")
def test_loopback_traffic_becomes_flows() -> None:
    stop = threading.Event()
    frames = iter_live_frames("lo", stop=stop, timeout_s=0.2)
    held: list[tuple[float, bytes] | None] = []
    reader = threading.Thread(target=lambda: held.extend(frames), daemon=True)
    reader.start()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind((SERVER, 0))
        sender.bind((CLIENT, 0))
        for i in range(3):
            sender.sendto(b"datagram %d" % i, receiver.getsockname())
            receiver.recv(100)
        udp = sender.getsockname()[1], receiver.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((SERVER, 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=5, source_address=(CLIENT, 0))
        server, _ = listener.accept()
        client.sendall(b"hello")
        assert server.recv(100) == b"hello"
        tcp = client.getsockname()[1], listener.getsockname()[1]
        client.close()
        server.close()
    threading.Event().wait(0.3)  # let the last segments (and a timeout) reach the capture
    stop.set()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert None in held  # the receive timeouts came through as flush markers

    tables = list(iter_flow_tables(held, flavor="engelen2021", linktype=1, reorder_window=0))
    flows = pa.concat_tables(tables).to_pylist()
    by_tuple = {(f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"], f["protocol"]): f for f in flows}
    datagrams = by_tuple[(CLIENT, udp[0], SERVER, udp[1], 17)]
    assert (datagrams["fwd_packets"], datagrams["bwd_packets"]) == (3, 0)  # each seen once, not twice
    connection = by_tuple[(CLIENT, tcp[0], SERVER, tcp[1], 6)]
    # SYN, ACK, data, FIN/ACK, ACK forward; SYN/ACK, ACK of data, FIN/ACK backward (delayed ACKs may merge)
    assert connection["fwd_packets"] >= 4 and connection["bwd_packets"] >= 2
    assert connection["fwd_packets"] + connection["bwd_packets"] <= 10


def test_flush_marker_times_flows_out_by_the_wall_clock() -> None:
    """A live source's flows end once they time out by the wall clock, not only at the next packet or at the end."""
    udp = bytes.fromhex(  # Ethernet + IPv4 + UDP 10.0.0.1:5000 -> 10.0.0.2:53, 4 bytes of payload
        "000000000002000000000001080045000020000100004011" "0000" "0a0000010a000002" "13880035000c0000" "61626364")
    state = {"exhausted": False}

    def source():  # two datagrams now (one-packet flows are dropped), then only flush markers: a quiet network
        yield time.time(), udp
        yield time.time(), udp
        for _ in range(30):
            time.sleep(0.1)
            yield None
        state["exhausted"] = True

    tables = iter_flow_tables(source(), flavor="cicids2017", flow_timeout=1.0, reorder_window=0)
    first = next(tables)
    assert not state["exhausted"]  # the flow came while the capture was still running
    assert first.to_pylist()[0]["dst_port"] == 53


def test_unknown_interface_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="no such interface"):
        iter_live_frames("eth9-nope")
    with pytest.raises(InvalidParameterError, match="timeout_s"):
        iter_live_frames("lo", timeout_s=0)


def test_cli_unknown_interface_and_conflicting_options(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "detect", "--model", str(tmp_path), "--interface", "eth9-nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error: no such interface: 'eth9-nope'" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([*CLI, "detect", "--model", str(tmp_path), "--interface", "lo", "--pcap", "x.pcap"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot be combined" in done.stderr and "Traceback" not in done.stderr
