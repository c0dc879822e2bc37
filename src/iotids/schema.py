"""The canonical flow schema: one snake_case name per CICFlowMeter feature, with the header spelling of every
layout the data comes in, and the label normalisation.

Units follow CICFlowMeter: durations, inter-arrival times, Active/Idle and the TCP flow time in microseconds,
lengths in bytes, rates per second. Nothing outside this module sees a raw header.

Layouts (recognised from the header, never from the file name):

=======================  ==============================================================================
``MachineLearningCVE``    CIC's MachineLearningCSV: 78 features + Label, leading spaces, Fwd Header Length twice
``TrafficLabelling``      CIC's GeneratedLabelledFlows: adds Flow ID, IPs, ports, Protocol, Timestamp
``Engelen2021``           the corrected release (Engelen et al. 2021): ``id``, renamed features, Attempted Category
``CICFlowMeter-4.0``      the CICFlowMeter 4.0 master jar output (``Total Fwd Packet``, ``FWD Init Win Bytes``)
``CSE-CIC-IDS2018``       CICFlowMeter 4.0 release output with short names (``Tot Fwd Pkts``, ``Flow Byts/s``)
``CICFlowMeter-Engelen``  the corrected CICFlowMeter's output (adds retransmissions, Total Connection Flow Time)
=======================  ==============================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from iotids.errors import DataFormatError, InvalidParameterError

Kind = Literal["int", "float"]
Flavor = Literal["cicids2017", "engelen2021"]


@dataclass(frozen=True, slots=True)
class Feature:
    """One flow feature: canonical name, header spellings, value kind and unit."""

    name: str
    cicids2017: str | None  # MachineLearningCVE / TrafficLabelling spelling (stripped)
    engelen2021: str | None  # corrected release / CICFlowMeter 4.0 master spelling
    short: str | None  # CSE-CIC-IDS2018 / CICFlowMeter 4.0 release spelling
    kind: Kind = "float"
    unit: str = ""
    aliases: tuple[str, ...] = ()


def _f(name: str, c17: str | None, e21: str | None = "", short: str | None = "", kind: Kind = "float",
       unit: str = "", aliases: tuple[str, ...] = ()) -> Feature:
    """Shorthand: an empty string means 'same spelling as CICIDS2017'."""
    return Feature(name, c17, c17 if e21 == "" else e21, c17 if short == "" else short, kind, unit, aliases)


US, B, PER_S = "µs", "bytes", "1/s"

FEATURES: tuple[Feature, ...] = (
    _f("flow_duration", "Flow Duration", kind="int", unit=US),
    _f("fwd_packets", "Total Fwd Packets", "Total Fwd Packet", "Tot Fwd Pkts", "int"),
    _f("bwd_packets", "Total Backward Packets", "Total Bwd packets", "Tot Bwd Pkts", "int"),
    _f("fwd_bytes", "Total Length of Fwd Packets", "Total Length of Fwd Packet", "TotLen Fwd Pkts", "int", B),
    _f("bwd_bytes", "Total Length of Bwd Packets", "Total Length of Bwd Packet", "TotLen Bwd Pkts", "int", B),
    _f("fwd_pkt_len_max", "Fwd Packet Length Max", "", "Fwd Pkt Len Max", "int", B),
    _f("fwd_pkt_len_min", "Fwd Packet Length Min", "", "Fwd Pkt Len Min", "int", B),
    _f("fwd_pkt_len_mean", "Fwd Packet Length Mean", "", "Fwd Pkt Len Mean", unit=B),
    _f("fwd_pkt_len_std", "Fwd Packet Length Std", "", "Fwd Pkt Len Std", unit=B),
    _f("bwd_pkt_len_max", "Bwd Packet Length Max", "", "Bwd Pkt Len Max", "int", B),
    _f("bwd_pkt_len_min", "Bwd Packet Length Min", "", "Bwd Pkt Len Min", "int", B),
    _f("bwd_pkt_len_mean", "Bwd Packet Length Mean", "", "Bwd Pkt Len Mean", unit=B),
    _f("bwd_pkt_len_std", "Bwd Packet Length Std", "", "Bwd Pkt Len Std", unit=B),
    _f("flow_bytes_per_s", "Flow Bytes/s", "", "Flow Byts/s", unit="bytes/s"),
    _f("flow_packets_per_s", "Flow Packets/s", "", "Flow Pkts/s", unit=PER_S),
    _f("flow_iat_mean", "Flow IAT Mean", unit=US),
    _f("flow_iat_std", "Flow IAT Std", unit=US),
    _f("flow_iat_max", "Flow IAT Max", kind="int", unit=US),
    _f("flow_iat_min", "Flow IAT Min", kind="int", unit=US),
    _f("fwd_iat_total", "Fwd IAT Total", "", "Fwd IAT Tot", "int", US),
    _f("fwd_iat_mean", "Fwd IAT Mean", unit=US),
    _f("fwd_iat_std", "Fwd IAT Std", unit=US),
    _f("fwd_iat_max", "Fwd IAT Max", kind="int", unit=US),
    _f("fwd_iat_min", "Fwd IAT Min", kind="int", unit=US),
    _f("bwd_iat_total", "Bwd IAT Total", "", "Bwd IAT Tot", "int", US),
    _f("bwd_iat_mean", "Bwd IAT Mean", unit=US),
    _f("bwd_iat_std", "Bwd IAT Std", unit=US),
    _f("bwd_iat_max", "Bwd IAT Max", kind="int", unit=US),
    _f("bwd_iat_min", "Bwd IAT Min", kind="int", unit=US),
    _f("fwd_psh_flags", "Fwd PSH Flags", kind="int"),
    _f("bwd_psh_flags", "Bwd PSH Flags", kind="int"),
    _f("fwd_urg_flags", "Fwd URG Flags", kind="int"),
    _f("bwd_urg_flags", "Bwd URG Flags", kind="int"),
    _f("fwd_rst_flags", None, "Fwd RST Flags", None, "int"),
    _f("bwd_rst_flags", None, "Bwd RST Flags", None, "int"),
    _f("fwd_header_length", "Fwd Header Length", "", "Fwd Header Len", "int", B),
    _f("bwd_header_length", "Bwd Header Length", "", "Bwd Header Len", "int", B),
    _f("fwd_packets_per_s", "Fwd Packets/s", "", "Fwd Pkts/s", unit=PER_S),
    _f("bwd_packets_per_s", "Bwd Packets/s", "", "Bwd Pkts/s", unit=PER_S),
    _f("pkt_len_min", "Min Packet Length", "Packet Length Min", "Pkt Len Min", "int", B),
    _f("pkt_len_max", "Max Packet Length", "Packet Length Max", "Pkt Len Max", "int", B),
    _f("pkt_len_mean", "Packet Length Mean", "", "Pkt Len Mean", unit=B),
    _f("pkt_len_std", "Packet Length Std", "", "Pkt Len Std", unit=B),
    _f("pkt_len_var", "Packet Length Variance", "", "Pkt Len Var", unit="bytes²"),
    _f("fin_flag_count", "FIN Flag Count", "", "FIN Flag Cnt", "int"),
    _f("syn_flag_count", "SYN Flag Count", "", "SYN Flag Cnt", "int"),
    _f("rst_flag_count", "RST Flag Count", "", "RST Flag Cnt", "int"),
    _f("psh_flag_count", "PSH Flag Count", "", "PSH Flag Cnt", "int"),
    _f("ack_flag_count", "ACK Flag Count", "", "ACK Flag Cnt", "int"),
    _f("urg_flag_count", "URG Flag Count", "", "URG Flag Cnt", "int"),
    _f("cwr_flag_count", "CWE Flag Count", "CWR Flag Count", "CWE Flag Count", "int"),
    _f("ece_flag_count", "ECE Flag Count", "", "ECE Flag Cnt", "int"),
    _f("down_up_ratio", "Down/Up Ratio"),
    _f("avg_packet_size", "Average Packet Size", "", "Pkt Size Avg", unit=B),
    _f("fwd_seg_size_avg", "Avg Fwd Segment Size", "Fwd Segment Size Avg", "Fwd Seg Size Avg", unit=B),
    _f("bwd_seg_size_avg", "Avg Bwd Segment Size", "Bwd Segment Size Avg", "Bwd Seg Size Avg", unit=B),
    _f("fwd_bulk_bytes_avg", "Fwd Avg Bytes/Bulk", "Fwd Bytes/Bulk Avg", "Fwd Byts/b Avg", unit=B),
    _f("fwd_bulk_packets_avg", "Fwd Avg Packets/Bulk", "Fwd Packet/Bulk Avg", "Fwd Pkts/b Avg"),
    _f("fwd_bulk_rate_avg", "Fwd Avg Bulk Rate", "Fwd Bulk Rate Avg", "Fwd Blk Rate Avg", unit="bytes/s"),
    _f("bwd_bulk_bytes_avg", "Bwd Avg Bytes/Bulk", "Bwd Bytes/Bulk Avg", "Bwd Byts/b Avg", unit=B),
    _f("bwd_bulk_packets_avg", "Bwd Avg Packets/Bulk", "Bwd Packet/Bulk Avg", "Bwd Pkts/b Avg"),
    _f("bwd_bulk_rate_avg", "Bwd Avg Bulk Rate", "Bwd Bulk Rate Avg", "Bwd Blk Rate Avg", unit="bytes/s"),
    # whole numbers in CICIDS2017, averages per subflow (fractional) in the corrected tool
    _f("subflow_fwd_packets", "Subflow Fwd Packets", "", "Subflow Fwd Pkts"),
    _f("subflow_fwd_bytes", "Subflow Fwd Bytes", "", "Subflow Fwd Byts", unit=B),
    _f("subflow_bwd_packets", "Subflow Bwd Packets", "", "Subflow Bwd Pkts"),
    _f("subflow_bwd_bytes", "Subflow Bwd Bytes", "", "Subflow Bwd Byts", unit=B),
    _f("fwd_init_win_bytes", "Init_Win_bytes_forward", "FWD Init Win Bytes", "Init Fwd Win Byts", "int", B,
       ("Init Win Bytes Fwd",)),
    _f("bwd_init_win_bytes", "Init_Win_bytes_backward", "Bwd Init Win Bytes", "Init Bwd Win Byts", "int", B,
       ("Init Win Bytes Bwd",)),
    _f("fwd_act_data_pkts", "act_data_pkt_fwd", "Fwd Act Data Pkts", "Fwd Act Data Pkts", "int",
       aliases=("Act Data Pkt Fwd",)),
    _f("bwd_act_data_pkts", None, "Bwd Act Data Pkts", None, "int"),
    _f("fwd_seg_size_min", "min_seg_size_forward", "Fwd Seg Size Min", "Fwd Seg Size Min", "int", B,
       ("Min Seg Size Fwd",)),
    _f("bwd_seg_size_min", None, "Bwd Seg Size Min", None, "int", B),
    _f("active_mean", "Active Mean", unit=US),
    _f("active_std", "Active Std", unit=US),
    _f("active_max", "Active Max", unit=US),
    _f("active_min", "Active Min", unit=US),
    _f("idle_mean", "Idle Mean", unit=US),
    _f("idle_std", "Idle Std", unit=US),
    _f("idle_max", "Idle Max", unit=US),
    _f("idle_min", "Idle Min", unit=US),
    _f("icmp_code", None, "ICMP Code", None, "int"),
    _f("icmp_type", None, "ICMP Type", None, "int"),
    _f("fwd_tcp_retrans_count", None, "Fwd TCP Retrans. Count", None, "int"),
    _f("bwd_tcp_retrans_count", None, "Bwd TCP Retrans. Count", None, "int"),
    _f("total_tcp_retrans_count", None, "Total TCP Retrans. Count", None, "int"),
    _f("total_tcp_flow_time", None, "Total TCP Flow Time", None, "int", US, ("Total Connection Flow Time",)),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

#: The second "Fwd Header Length" of the CIC files (``Fwd Header Length.1`` once pandas has read it).
DUPLICATE_HEADER_COLUMN = "fwd_header_length_dup"

#: Identifier and shortcut columns: kept in the frame for splits and alerts, never model features by default.
#: ``protocol`` is categorical; the preprocessor one-hot encodes it when asked to.
META_COLUMNS: dict[str, tuple[str, ...]] = {
    "record_id": ("id",),
    "flow_id": ("Flow ID",),
    "src_ip": ("Source IP", "Src IP"),
    "src_port": ("Source Port", "Src Port"),
    "dst_ip": ("Destination IP", "Dst IP"),
    "dst_port": ("Destination Port", "Dst Port"),
    "protocol": ("Protocol",),
    "timestamp": ("Timestamp",),
    "label": ("Label",),
    "attempted_category": ("Attempted Category",),
}
IDENTIFIER_COLUMNS: tuple[str, ...] = ("record_id", "flow_id", "src_ip", "src_port", "dst_ip", "dst_port",
                                       "timestamp")

#: Features of each flavour: CICIDS2017's 77 (its CSVs), and the corrected CICFlowMeter's (the improved release's
#: CSVs carry all but the retransmission counts and the backward active-data / segment-size counts).
FLAVOR_FEATURES: dict[Flavor, tuple[str, ...]] = {
    "cicids2017": tuple(f.name for f in FEATURES if f.cicids2017 is not None),
    "engelen2021": tuple(f.name for f in FEATURES if f.engelen2021 is not None),
}


def header_key(raw: str) -> str:
    """Normalise one header cell for lookup: BOM, surrounding and doubled spaces, case."""
    return re.sub(r"\s+", " ", raw.replace("\ufeff", "").replace("ï»¿", "")).strip().lower()


def _build_alias_map() -> dict[str, str]:
    table: dict[str, str] = {}
    for f in FEATURES:
        for spelling in (f.cicids2017, f.engelen2021, f.short, *f.aliases):
            if spelling:
                table[header_key(spelling)] = f.name
    for name, spellings in META_COLUMNS.items():
        for spelling in spellings:
            table[header_key(spelling)] = name
    table[header_key("Fwd Header Length.1")] = DUPLICATE_HEADER_COLUMN
    return table


ALIASES: dict[str, str] = _build_alias_map()

Layout = Literal["MachineLearningCVE", "TrafficLabelling", "Engelen2021", "CICFlowMeter-4.0", "CSE-CIC-IDS2018",
                 "CICFlowMeter-Engelen"]

#: Core features every layout has; a header without them is not flow data.
_CORE = ("flow_duration", "fwd_packets", "bwd_packets", "fwd_bytes", "flow_iat_mean", "label")


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """How one file's header maps to the canonical schema.

    ``columns[i]`` is the canonical name of raw column ``i`` or ``None`` for a column iotids ignores.
    """

    layout: Layout
    raw: tuple[str, ...]
    columns: tuple[str | None, ...]

    @property
    def flavor(self) -> Flavor:
        return "cicids2017" if self.layout in ("MachineLearningCVE", "TrafficLabelling") else "engelen2021"

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in FEATURES_BY_NAME)


def resolve_header(raw_names: list[str], *, path: str | None = None, require_label: bool = True) -> HeaderMap:
    """Recognise the layout of a header and map every column to its canonical name.

    ``require_label=False`` accepts a header without ``Label`` (live flow exporters, records to score).

    Raises
    ------
    DataFormatError
        If the header is not one of the known layouts; the message lists the expected columns that are missing.
    """
    keys = [header_key(n) for n in raw_names]
    columns: list[str | None] = []
    seen: set[str] = set()
    for key in keys:
        name = ALIASES.get(key)
        if name == "fwd_header_length" and name in seen:
            name = DUPLICATE_HEADER_COLUMN
        if name in seen:
            name = None  # a later copy of an already-mapped column (e.g. ConCap's extra "label")
        if name:
            seen.add(name)
        columns.append(name)
    missing = [c for c in _CORE if c not in seen and (require_label or c != "label")]
    if missing:
        expected = ", ".join(repr(_display_name(c)) for c in missing)
        found = ", ".join(repr(n.strip()) for n in raw_names[:6]) + (", ..." if len(raw_names) > 6 else "")
        raise DataFormatError(
            f"unknown layout: the header lacks the CICFlowMeter columns {expected} (found {len(raw_names)} "
            f"columns: {found}). iotids reads CICIDS2017 MachineLearningCVE and TrafficLabelling CSVs, the "
            "corrected release of Engelen et al. 2021 and CICFlowMeter output.",
            path=path, line=1,
        )
    key_set = set(keys)
    if "attempted category" in key_set or "total tcp flow time" in key_set:
        layout: Layout = "Engelen2021"
    elif "total connection flow time" in key_set:
        layout = "CICFlowMeter-Engelen"
    elif "tot fwd pkts" in key_set:
        layout = "CSE-CIC-IDS2018"
    elif "total fwd packet" in key_set:
        layout = "CICFlowMeter-4.0"
    elif "flow id" in key_set:
        layout = "TrafficLabelling"
    else:
        layout = "MachineLearningCVE"
    return HeaderMap(layout, tuple(raw_names), tuple(columns))


def _display_name(name: str) -> str:
    feature = FEATURES_BY_NAME.get(name)
    if feature is not None:
        return feature.cicids2017 or feature.engelen2021 or name
    return META_COLUMNS[name][0]


def header_for(flavor: Flavor) -> list[tuple[str, str]]:
    """``(canonical, header)`` pairs of the columns a flow CSV of ``flavor`` carries, in the data set's order."""
    ids = [("flow_id", "Flow ID")]
    if flavor == "cicids2017":
        ids += [("src_ip", "Source IP"), ("src_port", "Source Port"), ("dst_ip", "Destination IP"),
                ("dst_port", "Destination Port")]
    else:
        ids += [("src_ip", "Src IP"), ("src_port", "Src Port"), ("dst_ip", "Dst IP"), ("dst_port", "Dst Port")]
    ids += [("protocol", "Protocol"), ("timestamp", "Timestamp")]
    feats = [(name, FEATURES_BY_NAME[name].cicids2017 if flavor == "cicids2017" else
              FEATURES_BY_NAME[name].engelen2021) for name in FLAVOR_FEATURES[flavor]]
    return [*ids, *feats, ("label", "Label")]


# ----------------------------------------------------------------------------------------------------------------
# Labels

BENIGN = "BENIGN"
_DASHES = re.compile(r"\s*[\u0096\u2013\u2014\ufffd]+\s*|\s+-+\s+")

_FAMILIES: tuple[tuple[str, str], ...] = (
    ("benign", BENIGN),
    ("ddos", "DDoS"),
    ("dos", "DoS"),
    ("portscan", "PortScan"),
    ("port scan", "PortScan"),
    ("ftp-patator", "Brute Force"),
    ("ssh-patator", "Brute Force"),
    ("web attack", "Web Attack"),
    ("bot", "Botnet"),
    ("infiltration", "Infiltration"),
    ("heartbleed", "Heartbleed"),
)

AttemptedPolicy = Literal["benign", "drop", "attack"]
ATTEMPTED_POLICIES: tuple[str, ...] = ("benign", "drop", "attack")


def _undo_double_encoding(text: str) -> str:
    """Undo UTF-8 read as Latin-1 (possibly twice): 'ï¿½' -> '\ufffd', 'Â\x96' -> '\x96'."""
    for _ in range(3):
        try:
            fixed = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
        if fixed == text:
            return text
        text = fixed
    return text


def normalize_label(raw: str | bytes) -> str:
    """One spelling per label, whatever the file's encoding.

    >>> normalize_label(b"Web Attack \\x96 Brute Force")
    'Web Attack - Brute Force'
    >>> normalize_label("Web Attack \\u00ef\\u00bf\\u00bd XSS")
    'Web Attack - XSS'
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    text = _undo_double_encoding(text.replace("ï»¿", "").replace("\ufeff", ""))
    text = re.sub(r"\s+", " ", text).strip()
    if text.upper() == BENIGN:
        return BENIGN
    return _DASHES.sub(" - ", text)


def split_attempted(label: str) -> tuple[str, bool]:
    """``('Web Attack - XSS', True)`` for the corrected release's ``'Web Attack - XSS - Attempted'``."""
    if label.endswith(" - Attempted"):
        return label[: -len(" - Attempted")], True
    return label, False


def label_family(label: str) -> str:
    """The attack family of a normalised label (``DoS Hulk`` -> ``DoS``); unknown labels are their own family."""
    base, _ = split_attempted(label)
    key = base.lower()
    for prefix, family in _FAMILIES:
        if key.startswith(prefix):
            return family
    return base


def check_attempted_policy(policy: str) -> AttemptedPolicy:
    if policy not in ATTEMPTED_POLICIES:
        raise InvalidParameterError(
            f"The 'attempted' parameter must be one of {', '.join(ATTEMPTED_POLICIES)}. Got {policy!r} instead."
        )
    return policy  # type: ignore[return-value]
