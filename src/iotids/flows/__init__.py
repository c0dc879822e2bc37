"""Packets to CICFlowMeter flows: a fast, streaming, CICFlowMeter-compatible flow extractor.

``iter_flows(source, flavor=...)`` yields one dict per finished flow (identifiers ``flow_id``, ``src_ip``,
``src_port``, ``dst_ip``, ``dst_port``, ``protocol``, ``timestamp`` (UTC datetime) and the flavour's features under
their canonical names, see :mod:`iotids.schema`) as soon as the flow ends or times out; ``iter_flow_tables`` yields
the same as Arrow tables (cheaper in bulk); ``write_flows_csv`` writes a CSV with the data set's header atomically.
``source`` is a capture file (pcap or pcapng), a list of them (each its own capture), or an iterable of live frames
``(seconds, frame_bytes)`` of link type ``linktype``; a ``None`` item processes what is held (use it on a capture
timeout; ``reorder_window=0`` suits a live capture, which arrives in time order).

The flavours (``cicids2017``, ``engelen2021``) reproduce the Java tools feature by feature, bugs included; see
:mod:`iotids.flows.engine` and :mod:`iotids.flows.features`, and ``tests/flows/test_golden.py`` for the checks
against CSVs the Java tools wrote. Where iotids differs from the Java tools on purpose:

* IPv6 is read (both Java tools read IPv4 only by default, and stamp IPv6 packets in milliseconds);
* ARP frames are not read as IPv4 (jnetpcap's "8.0.6.4" flows of CSE-CIC-IDS2018 do not appear);
* a timed-out flow is emitted once the capture clock passes its timeout, not when the next packet of its
  5-tuple arrives (same features); the state a later packet of that 5-tuple needs (direction, connection
  time, retransmission history) is kept ``tombstone_ttl`` seconds (default 10 min; at most a million 5-tuples),
  not for ever, and a connection's retransmission history keeps at most 131,072 segments;
* packets are sorted by time within ``reorder_window`` seconds (CICFlowMeter reads the file order; the corrected
  tool's CSVs were made from a ``reordercap``-sorted copy); ``reorder_window=0`` keeps the file order;
* lengths come from the IP header, so a capture cut by a snap length keeps the packets' real sizes;
* the Label column is a constant (``NeedManualLabel`` unless told otherwise).

Like the Java tools, IP packets that are not TCP or UDP (or ICMP, for ``engelen2021``), IP fragments after the
first included, form protocol-0 flows between their two addresses.
"""

from iotids.flows.extract import (
    FLAVORS,
    ExtractStats,
    FlowTable,
    iter_flow_tables,
    iter_flows,
    write_flows_csv,
)

__all__ = ["FLAVORS", "ExtractStats", "FlowTable", "iter_flow_tables", "iter_flows", "write_flows_csv"]
