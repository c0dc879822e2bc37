"""Live capture: Ethernet frames from a Linux interface through a raw ``AF_PACKET`` socket (stdlib only).

The frames feed :func:`iotids.flows.iter_flow_tables` (``linktype=1``, ``reorder_window=0``); the ``None`` items
on each receive timeout let it process what it holds even when the network is quiet.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from iotids.errors import InvalidParameterError

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

ETH_P_ALL = 0x0003


def iter_live_frames(interface: str, *, stop: threading.Event | None = None, timeout_s: float = 1.0,
                     snaplen: int = 65535) -> Iterator[tuple[float, bytes] | None]:
    """Frames ``(time.time(), frame)`` captured on ``interface``, and ``None`` at least every ``timeout_s`` seconds.

    ``None`` comes on each receive timeout (``timeout_s`` of silence) and, on a busy network, once ``timeout_s``
    has passed since the last one, so the frames gathered so far are processed without waiting for a full batch.

    The socket is opened at once (so errors show before the first frame is asked for) and closed when the
    iteration ends, which it does once ``stop`` is set (checked after every frame and every timeout). A frame
    this host sends is seen once: the outgoing copy (which the loopback interface also delivers as incoming)
    is skipped.

    Raises
    ------
    InvalidParameterError
        The interface does not exist, or the process lacks root / ``CAP_NET_RAW``, or a parameter is out of range.
    """
    if not timeout_s > 0:
        raise InvalidParameterError(f"The 'timeout_s' parameter must be > 0 seconds. Got {timeout_s!r} instead.")
    if not isinstance(snaplen, int) or snaplen < 1:
        raise InvalidParameterError(f"The 'snaplen' parameter must be an int >= 1. Got {snaplen!r} instead.")
    if not hasattr(socket, "AF_PACKET"):
        raise InvalidParameterError("live capture needs Linux (AF_PACKET sockets); use --pcap with a capture file.")
    try:
        socket.if_nametoindex(interface)
    except OSError:
        raise InvalidParameterError(f"no such interface: {interface!r} (see `ip link` for the names)") from None
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    except PermissionError:
        raise InvalidParameterError(f"capturing on {interface} needs root or CAP_NET_RAW") from None
    try:
        sock.bind((interface, 0))
        sock.settimeout(timeout_s)
    except OSError as exc:
        sock.close()
        raise InvalidParameterError(f"cannot capture on {interface}: {exc.strerror or exc}") from None
    return _receive(sock, stop, timeout_s, snaplen)


def _receive(sock: socket.socket, stop: threading.Event | None, timeout: float,
             snaplen: int) -> Iterator[tuple[float, bytes] | None]:
    with sock:
        flush_at = time.monotonic() + timeout
        while stop is None or not stop.is_set():
            try:
                frame, address = sock.recvfrom(snaplen)
            except TimeoutError:
                frame = None
            else:
                if address[2] != socket.PACKET_OUTGOING:
                    yield time.time(), frame
            if frame is None or time.monotonic() >= flush_at:  # a timeout, or a busy network's timeout_s passed
                yield None
                flush_at = time.monotonic() + timeout
