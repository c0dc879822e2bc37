"""From finished flow rows (:mod:`.engine`) to the data set's features, vectorised over many flows.

Each feature follows the getter of the Java tool it imitates, including its arithmetic: ``cicids2017`` divides
by a zero duration (``Infinity``/``NaN`` rates, as in the CICIDS2017 CSVs), its Down/Up ratio is an integer
division, its eight flag columns carry the first packet's flags in ``HashMap`` key order (column ``FIN Flag
Count`` holds RST, ``SYN`` holds PSH, ...), and its subflow columns equal the totals. ``engelen2021`` writes -1
for the rates of a zero-duration flow, 0 for the IAT statistics of a one-packet flow, and real (double) Down/Up,
bulk and subflow values.
"""

from __future__ import annotations

import numpy as np

from iotids.flows import engine as E
from iotids.schema import FEATURES_BY_NAME, FLAVOR_FEATURES

#: ``cicids2017``: the flag column (FIN, SYN, RST, PSH, ACK, URG, CWE, ECE) -> the flag it really counts, from
#: Java's HashMap iteration order of the keys "FIN".."ECE" (RST, PSH, ECE, SYN, ACK, FIN, URG, CWR).
_CIC_FLAG_SOURCE = {"fin_flag_count": 2, "syn_flag_count": 3, "rst_flag_count": 7, "psh_flag_count": 1,
                    "ack_flag_count": 4, "urg_flag_count": 0, "cwr_flag_count": 5, "ece_flag_count": 6}
_FLAG_COLUMNS = ("fin_flag_count", "syn_flag_count", "rst_flag_count", "psh_flag_count", "ack_flag_count",
                 "urg_flag_count", "cwr_flag_count", "ece_flag_count")


class _Stat:
    """Views of one running statistic over all rows (commons-math semantics: NaN for an empty one)."""

    def __init__(self, FD: np.ndarray, stat: int) -> None:
        b = stat * E.NSTAT
        self.n = FD[:, b + E.S_N]
        self.sum = FD[:, b + E.S_SUM]
        with np.errstate(invalid="ignore"):
            self.mean = np.where(self.n > 0, FD[:, b + E.S_MEAN], np.nan)
            self.min = np.where(self.n > 0, FD[:, b + E.S_MIN], np.nan)
            self.max = np.where(self.n > 0, FD[:, b + E.S_MAX], np.nan)
            var = np.where(self.n > 1, FD[:, b + E.S_M2] / np.maximum(self.n - 1.0, 1.0), 0.0)
            self.var = np.where(self.n > 0, var, np.nan)
            self.std = np.sqrt(self.var)


def _per_second(count: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Java's ``count / ((double) duration / 1000000L)``: Infinity or NaN for a zero duration."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return count / (duration / 1e6)


def _where(cond: np.ndarray, values: np.ndarray, other: float = 0.0) -> np.ndarray:
    return np.where(cond, values, other)


def compute_features(EI: np.ndarray, ED: np.ndarray, flavor: str) -> dict[str, np.ndarray]:
    """The features of ``flavor`` (canonical names) for finished flows ``EI``/``ED``."""
    cic = flavor == "cicids2017"
    fwd_n = EI[:, E.FWD_N]
    bwd_n = EI[:, E.BWD_N]
    total_n = fwd_n + bwd_n
    duration = EI[:, E.LAST] - EI[:, E.START]
    fwd_len, bwd_len, flow_len = _Stat(ED, E.ST_FWD_LEN), _Stat(ED, E.ST_BWD_LEN), _Stat(ED, E.ST_FLOW_LEN)
    flow_iat, fwd_iat, bwd_iat = _Stat(ED, E.ST_FLOW_IAT), _Stat(ED, E.ST_FWD_IAT), _Stat(ED, E.ST_BWD_IAT)
    active, idle = _Stat(ED, E.ST_ACTIVE), _Stat(ED, E.ST_IDLE)
    has_fwd, has_bwd = fwd_n > 0, bwd_n > 0
    positive = duration > 0
    out: dict[str, np.ndarray] = {
        "flow_duration": duration,
        "fwd_packets": fwd_n,
        "bwd_packets": bwd_n,
        "fwd_bytes": EI[:, E.FWD_BYTES],
        "bwd_bytes": EI[:, E.BWD_BYTES],
        "fwd_pkt_len_max": _where(has_fwd, fwd_len.max),
        "fwd_pkt_len_min": _where(has_fwd, fwd_len.min),
        "fwd_pkt_len_mean": _where(has_fwd, fwd_len.mean),
        "fwd_pkt_len_std": _where(has_fwd, fwd_len.std),
        "bwd_pkt_len_max": _where(has_bwd, bwd_len.max),
        "bwd_pkt_len_min": _where(has_bwd, bwd_len.min),
        "bwd_pkt_len_mean": _where(has_bwd, bwd_len.mean),
        "bwd_pkt_len_std": _where(has_bwd, bwd_len.std),
    }
    payload = (EI[:, E.FWD_BYTES] + EI[:, E.BWD_BYTES]).astype(np.float64)
    if cic:
        out["flow_bytes_per_s"] = _per_second(payload, duration)
        out["flow_packets_per_s"] = _per_second(total_n.astype(np.float64), duration)
        iat = {"mean": flow_iat.mean, "std": flow_iat.std, "max": flow_iat.max, "min": flow_iat.min}
    else:
        out["flow_bytes_per_s"] = np.where(duration != 0, _per_second(payload, duration), -1.0)
        out["flow_packets_per_s"] = np.where(duration != 0, _per_second(total_n.astype(np.float64), duration), -1.0)
        iat = {k: np.nan_to_num(v, nan=0.0) for k, v in
               (("mean", flow_iat.mean), ("std", flow_iat.std), ("max", flow_iat.max), ("min", flow_iat.min))}
    out |= {f"flow_iat_{k}": v for k, v in iat.items()}
    for side, n, stat in (("fwd", fwd_n, fwd_iat), ("bwd", bwd_n, bwd_iat)):
        many = n > 1
        out[f"{side}_iat_total"] = _where(many, stat.sum)
        out[f"{side}_iat_mean"] = _where(many, stat.mean)
        out[f"{side}_iat_std"] = _where(many, stat.std)
        out[f"{side}_iat_max"] = _where(many, stat.max)
        out[f"{side}_iat_min"] = _where(many, stat.min)
    out |= {
        "fwd_psh_flags": EI[:, E.FWD_PSH],
        "bwd_psh_flags": EI[:, E.BWD_PSH],
        "fwd_urg_flags": EI[:, E.FWD_URG],
        "bwd_urg_flags": EI[:, E.BWD_URG],
        "fwd_rst_flags": EI[:, E.FWD_RST],
        "bwd_rst_flags": EI[:, E.BWD_RST],
        "fwd_header_length": EI[:, E.FWD_HDR],
        "bwd_header_length": EI[:, E.BWD_HDR],
        "fwd_packets_per_s": _where(positive, _per_second(fwd_n.astype(np.float64), duration)),
        "bwd_packets_per_s": _where(positive, _per_second(bwd_n.astype(np.float64), duration)),
        "pkt_len_min": flow_len.min,
        "pkt_len_max": flow_len.max,
        "pkt_len_mean": flow_len.mean,
        "pkt_len_std": flow_len.std,
        "pkt_len_var": flow_len.var,
    }
    for k, name in enumerate(_FLAG_COLUMNS):
        out[name] = EI[:, E.FLAG0 + (_CIC_FLAG_SOURCE[name] if cic else k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        if cic:
            out["down_up_ratio"] = _where(has_fwd, (bwd_n // np.maximum(fwd_n, 1)).astype(np.float64))
        else:
            out["down_up_ratio"] = _where(has_fwd, bwd_n / fwd_n)
        out["avg_packet_size"] = _where(total_n > 0, flow_len.sum / total_n)
        out["fwd_seg_size_avg"] = _where(has_fwd, fwd_len.sum / fwd_n)
        out["bwd_seg_size_avg"] = _where(has_bwd, bwd_len.sum / bwd_n)
        for side, base in (("fwd", E.BULK_F), ("bwd", E.BULK_B)):
            states = EI[:, base + E.B_STATES]
            bulk_dur = EI[:, base + E.B_DUR]
            size = EI[:, base + E.B_SIZE].astype(np.float64)
            out[f"{side}_bulk_bytes_avg"] = _where(states != 0, size / states)
            out[f"{side}_bulk_packets_avg"] = _where(states != 0, EI[:, base + E.B_PKTS] / states)
            out[f"{side}_bulk_rate_avg"] = _where(bulk_dur != 0, size / (bulk_dur / 1e6))
        sf = EI[:, E.SF_COUNT]
        for name, values in (("subflow_fwd_packets", fwd_n), ("subflow_fwd_bytes", EI[:, E.FWD_BYTES]),
                             ("subflow_bwd_packets", bwd_n), ("subflow_bwd_bytes", EI[:, E.BWD_BYTES])):
            if cic:
                out[name] = np.where(sf > 0, values // np.maximum(sf, 1), 0)
            else:
                out[name] = _where(sf > 0, values / sf)
    retx_fwd, retx_bwd = EI[:, E.RETX_FWD], EI[:, E.RETX_BWD]
    out |= {
        "fwd_init_win_bytes": EI[:, E.WIN_FWD],
        "bwd_init_win_bytes": EI[:, E.WIN_BWD],
        "fwd_act_data_pkts": EI[:, E.ACT_FWD],
        "bwd_act_data_pkts": EI[:, E.ACT_BWD],
        "fwd_seg_size_min": EI[:, E.MINSEG_FWD],
        "bwd_seg_size_min": EI[:, E.MINSEG_BWD],
        "active_mean": _where(active.n > 0, active.mean),
        "active_std": _where(active.n > 0, active.std),
        "active_max": _where(active.n > 0, active.max),
        "active_min": _where(active.n > 0, active.min),
        "idle_mean": _where(idle.n > 0, idle.mean),
        "idle_std": _where(idle.n > 0, idle.std),
        "idle_max": _where(idle.n > 0, idle.max),
        "idle_min": _where(idle.n > 0, idle.min),
        "icmp_code": EI[:, E.ICMP_CODE],
        "icmp_type": EI[:, E.ICMP_TYPE],
        "fwd_tcp_retrans_count": retx_fwd,
        "bwd_tcp_retrans_count": retx_bwd,
        "total_tcp_retrans_count": retx_fwd + retx_bwd,
        "total_tcp_flow_time": EI[:, E.CUM],
    }
    # int features are whole numbers by construction (CICFlowMeter's NaN/Infinity are all in rates); the
    # corrected tool's subflow values are real numbers although the schema counts them as int
    return {name: out[name].astype(np.int64 if FEATURES_BY_NAME[name].kind == "int"
                                   and not (not cic and name.startswith("subflow_")) else np.float64)
            for name in FLAVOR_FEATURES[flavor]}  # type: ignore[index]
