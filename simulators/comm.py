"""Communication model: collectives over per-direction links, with latency.

A device sees two fabrics (hardware profile `scaleup` and `scaleout`, both PER DIRECTION):
  scale-up  (NVLink / UB / Infinity Fabric ...) to the other devices of its domain (`domain_devices`),
  scale-out (one NIC share per device: IB / RoCE ...) to devices in other domains.
A group of g devices is placed domain by domain: a = min(g, domain) of them share my domain,
b = ceil(g / a) domains take part.

  all-reduce (hierarchical ring): 2(a-1)/a * S / bw_up + 2(b-1)/b * (S/a) / bw_out
                                  + 2(a-1) lat_up + 2(b-1) lat_out          (b = 1: the plain ring 2(t-1)/t * S)
  all-to-all (each device sends a payload P spread evenly over the g ranks, 1/g stays local):
                                  max(P (a-1)/g / bw_up, P (g-a)/g / bw_out) + one latency
                                  (both link kinds run at once; the slower one sets the time)
  EP dispatch / combine: an all-to-all whose payload is tokens x copies x hidden x bytes per element.

Latency: the profile's `latency_s` where it has one, else ASSUMED_LATENCY_S (an assumption, flagged).
Everything is vectorised: bytes and group sizes may be numpy arrays. SI units throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .errors import ConfigError
from .hardware import HardwareProfile

# ASSUMPTION (not from any profile): one-way latency of one link hop, used when the profile has no
# `latency_s`. Order of magnitude of published NVLink / UB hops (~1 us; CloudMatrix384 paper Table 1
# measures 1.2-1.9 us NPU-NPU) and of RDMA over IB / RoCE through one switch level (~2-5 us).
ASSUMED_LATENCY_S = {"scaleup": 1.0e-6, "scaleout": 3.0e-6}

# FP8 activations travel with one fp32 scale per 128 channels (DeepSeek-V3 fine-grained 1x128 tile
# quantisation; DeepEP FP8 dispatch): 4 bytes / 128 elements on top of 1 byte per element.
FP8_SCALE_BYTES_PER_ELEMENT = 4.0 / 128.0

COLLECTIVES = ("all_reduce", "all_to_all")


@dataclass(frozen=True)
class Fabric:
    """The links one device sees. Bandwidths per device, per direction; 0 means no such link."""

    name: str
    scaleup_bytes_per_s: float
    scaleup_latency_s: float
    domain_devices: int
    scaleout_bytes_per_s: float
    scaleout_latency_s: float
    assumed: tuple[str, ...] = ()  # fields filled from ASSUMED_LATENCY_S (or a default derate)
    all_reduce_bytes_per_s: float = 0.0  # scale-up ring bus bandwidth; 0: scaleup_bytes_per_s

    @classmethod
    def achievable(cls, hw: HardwareProfile, phase: str = "decode") -> Fabric:
        """The links at the rates measured collectives reach (profile `achievable:` block): EP
        all-to-all over scale-up and over the NICs (low-latency kernels at decode, high-throughput at
        prefill), the ring all-reduce bus bandwidth; labelled default derates where unpublished."""
        nominal = cls.from_profile(hw)
        ach = hw.achievable
        out_key = "scaleout_bandwidth" if phase == "decode" else "scaleout_bandwidth_high_throughput"
        derated = [k for k in ("scaleup_bandwidth", out_key, "all_reduce_bandwidth") if k in ach.assumed]
        up = ach.rate("scaleup_bandwidth").absolute(nominal.scaleup_bytes_per_s) if nominal.scaleup_bytes_per_s else 0.0
        out = ach.rate(out_key).absolute(nominal.scaleout_bytes_per_s) if nominal.scaleout_bytes_per_s else 0.0
        ar = ach.rate("all_reduce_bandwidth").absolute(nominal.scaleup_bytes_per_s) if nominal.scaleup_bytes_per_s \
            else 0.0
        return replace(nominal, scaleup_bytes_per_s=min(up, nominal.scaleup_bytes_per_s),
                       scaleout_bytes_per_s=min(out, nominal.scaleout_bytes_per_s),
                       all_reduce_bytes_per_s=min(ar, nominal.scaleup_bytes_per_s),
                       assumed=nominal.assumed + tuple(f"{k} (default derate)" for k in derated))

    @classmethod
    def from_profile(cls, hw: HardwareProfile) -> Fabric:
        assumed: list[str] = []

        def latency(link, kind: str) -> float:
            if link is not None and link.latency_s is not None:
                return link.latency_s.value
            assumed.append(f"{kind}_latency_s")
            return ASSUMED_LATENCY_S[kind]

        up, out = hw.scaleup, hw.scaleout
        domain = 1
        if up is not None:
            domain = int(up.domain_devices.value) if up.domain_devices is not None else 1
        return cls(
            name=hw.name,
            scaleup_bytes_per_s=up.bandwidth_bytes_per_s_per_direction.value if up is not None else 0.0,
            scaleup_latency_s=latency(up, "scaleup"),
            domain_devices=max(1, domain),
            scaleout_bytes_per_s=out.bandwidth_bytes_per_s_per_direction.value if out is not None else 0.0,
            scaleout_latency_s=latency(out, "scaleout"),
            assumed=tuple(assumed),
        )

    @property
    def max_devices(self) -> float:
        """Largest group this fabric connects: one domain without scale-out NICs."""
        return float("inf") if self.scaleout_bytes_per_s > 0 else float(self.domain_devices)


def _split(group, fabric: Fabric) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): devices of the group inside my domain, and domains the group spans."""
    g = np.asarray(group, dtype=np.float64)
    a = np.minimum(g, fabric.domain_devices)
    b = np.ceil(g / a)
    return a, b


def _per_s(bytes_, bandwidth: float) -> np.ndarray:
    """bytes / bandwidth, inf where bytes must cross a link that does not exist."""
    bytes_ = np.asarray(bytes_, dtype=np.float64)
    if bandwidth > 0:
        return bytes_ / bandwidth
    return np.where(bytes_ > 0, np.inf, 0.0)


def all_reduce_time_s(bytes_, group, fabric: Fabric) -> np.ndarray:
    """Hierarchical ring all-reduce of a `bytes_` tensor over `group` devices (0 for one device)."""
    a, b = _split(group, fabric)
    S = np.asarray(bytes_, dtype=np.float64)
    ring_steps_up = 2.0 * (a - 1.0)  # reduce-scatter + all-gather: (a-1) steps each
    ring_steps_out = 2.0 * (b - 1.0)
    t_up = _per_s(ring_steps_up / a * S, fabric.all_reduce_bytes_per_s or fabric.scaleup_bytes_per_s)
    t_out = _per_s(ring_steps_out / b * S / a, fabric.scaleout_bytes_per_s)  # each NIC carries 1/a of S
    latency = ring_steps_up * fabric.scaleup_latency_s + ring_steps_out * fabric.scaleout_latency_s
    return t_up + t_out + latency


def all_to_all_time_s(payload_bytes, group, fabric: Fabric) -> np.ndarray:
    """All-to-all: each device sends `payload_bytes` in total, an equal share to each of the
    `group` ranks (its own share stays local). 0 for one device."""
    g = np.asarray(group, dtype=np.float64)
    a, b = _split(g, fabric)
    P = np.asarray(payload_bytes, dtype=np.float64)
    t_up = _per_s(P * (a - 1.0) / g, fabric.scaleup_bytes_per_s)
    t_out = _per_s(P * (g - a) / g, fabric.scaleout_bytes_per_s)
    latency = np.where(b > 1, fabric.scaleout_latency_s, np.where(a > 1, fabric.scaleup_latency_s, 0.0))
    return np.maximum(t_up, t_out) + latency


def send_time_s(bytes_, fabric: Fabric, cross_domain) -> np.ndarray:
    """Point-to-point send (pipeline stage boundary) over scale-out or scale-up."""
    cross = np.asarray(cross_domain, dtype=bool)
    up = _per_s(bytes_, fabric.scaleup_bytes_per_s) + fabric.scaleup_latency_s
    out = _per_s(bytes_, fabric.scaleout_bytes_per_s) + fabric.scaleout_latency_s
    return np.where(cross, out, up)


def element_bytes(dtype_bytes: float) -> float:
    """Bytes per activation element on the wire: FP8 carries its 1x128 scales."""
    return dtype_bytes + (FP8_SCALE_BYTES_PER_ELEMENT if dtype_bytes == 1.0 else 0.0)


def ep_time_s(tokens_per_device, hidden: int, copies_per_token: float, ep, fabric: Fabric,
              dispatch_bytes_per_element: float, combine_bytes_per_element: float,
              dedup_per_domain: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(dispatch_s, combine_s) of one MoE layer under expert parallelism over `ep` devices.

    Each of a device's tokens goes to `copies_per_token` experts (top-k routed, plus shared experts
    when they live on other devices) spread uniformly over the ep ranks, as a `hidden`-wide
    activation: dispatch in `dispatch_bytes_per_element`, combine (the weighted outputs back) in
    `combine_bytes_per_element`. dedup_per_domain: a token crosses to each remote domain once and is
    forwarded over scale-up there (DeepEP's high-throughput kernels); otherwise every copy is sent
    directly (DeepEP's low-latency kernels).
    """
    g = np.asarray(ep, dtype=np.float64)
    a, b = _split(g, fabric)
    T = np.asarray(tokens_per_device, dtype=np.float64)
    n = float(copies_per_token)
    copies_up = n * (a - 1.0) / g  # expected copies to other devices of my domain
    copies_out = n * (g - a) / g  # expected copies to devices in other domains
    if dedup_per_domain:
        other_domain_share = np.where(b > 1, 1.0 / np.maximum(b, 1.0), 0.0)  # one other domain's share
        # expected distinct remote domains hit by n copies, each copy landing in a uniform domain
        distinct_out = (b - 1.0) * (1.0 - (1.0 - other_domain_share) ** n)
        copies_up = copies_up + copies_out * (a - 1.0) / a  # forwarded inside the receiving domain
        copies_out = np.where(b > 1, distinct_out, 0.0)

    def one(bytes_per_element: float) -> np.ndarray:
        per_copy = T * hidden * bytes_per_element
        t = np.maximum(_per_s(per_copy * copies_up, fabric.scaleup_bytes_per_s),
                       _per_s(per_copy * copies_out, fabric.scaleout_bytes_per_s))
        latency = np.where(b > 1, fabric.scaleout_latency_s, np.where(a > 1, fabric.scaleup_latency_s, 0.0))
        return np.where(g > 1, t + latency, 0.0)

    return one(dispatch_bytes_per_element), one(combine_bytes_per_element)


OVERLAPS = ("none", "two-micro-batch", "ideal")


def step_time_s(compute_s, comm_s, overlap: bool | str) -> np.ndarray:
    """Ideal overlap (True / 'ideal', the speed-of-light bound): max(compute, comm); else their sum."""
    compute_s = np.asarray(compute_s, dtype=np.float64)
    comm_s = np.asarray(comm_s, dtype=np.float64)
    return np.maximum(compute_s, comm_s) if overlap in (True, "ideal") else compute_s + comm_s


def two_micro_batch_step_s(compute_half_s, critical_comm_half_s, hideable_comm_half_s) -> np.ndarray:
    """Two-micro-batch overlap (DeepSeek's dual micro-batch, SGLang's TBO): the batch is split in
    two; each half's dispatch / combine (`hideable`) runs while the other half computes, so a layer
    takes 2 max(compute + critical, hideable) per pair of halves. `critical` (the TP all-reduce)
    stays on the compute stream. The halves are costed at half the batch by the caller, so weights
    are read twice: overlap can lose where a step is weight-read bound."""
    c = np.asarray(compute_half_s, dtype=np.float64) + np.asarray(critical_comm_half_s, dtype=np.float64)
    return 2.0 * np.maximum(c, np.asarray(hideable_comm_half_s, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Measured vs predicted: fit a loopback "fabric" (bandwidth + latency) to measured collectives.
# ---------------------------------------------------------------------------------------------


def _features(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (latency hops, bytes on the critical link) of the comm model on ONE domain
    (all ranks share one host: every transfer is scale-up)."""
    g = df["world_size"].to_numpy(np.float64)
    S = df["bytes"].to_numpy(np.float64)
    is_ar = (df["collective"] == "all_reduce").to_numpy()
    hops = np.where(is_ar, 2.0 * (g - 1.0), 1.0)
    link_bytes = np.where(is_ar, 2.0 * (g - 1.0) / g * S, (g - 1.0) / g * S)
    return hops, link_bytes


def fit_fabric(measured: pd.DataFrame, name: str = "loopback") -> Fabric:
    """Least squares of time = hops * latency + link_bytes / bandwidth over all measured rows,
    weighted by 1/time (relative error). Returns a one-domain Fabric holding every rank."""
    missing = {"collective", "world_size", "bytes", "median_s"} - set(measured.columns)
    if missing:
        raise ConfigError(f"measured communication table: missing column(s) {', '.join(sorted(missing))}")
    df = measured[measured["median_s"] > 0]
    if len(df) < 2:
        raise ConfigError("measured communication table: need at least 2 timed rows to fit bandwidth and latency")
    hops, link_bytes = _features(df)
    t = df["median_s"].to_numpy(np.float64)
    w = 1.0 / t
    A = np.stack([hops, link_bytes], axis=1) * w[:, None]
    (latency, inv_bw), *_ = np.linalg.lstsq(A, t * w, rcond=None)
    latency = max(float(latency), 0.0)
    inv_bw = max(float(inv_bw), 1e-15)
    return Fabric(name=name, scaleup_bytes_per_s=1.0 / inv_bw, scaleup_latency_s=latency,
                  domain_devices=int(df["world_size"].max()), scaleout_bytes_per_s=0.0, scaleout_latency_s=0.0)


def predict_collective_s(collective, bytes_, world_size, fabric: Fabric) -> np.ndarray:
    """The comm model's time for measured rows: all-reduce of `bytes_`, or all-to-all of a
    `bytes_` send buffer per rank."""
    coll = np.asarray(collective)
    ar = all_reduce_time_s(bytes_, world_size, fabric)
    a2a = all_to_all_time_s(bytes_, world_size, fabric)
    return np.where(coll == "all_reduce", ar, a2a)


def compare_comm(measured: pd.DataFrame, fabric: Fabric | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted (comm model on `fabric`, default: fitted to `measured`) vs measured.
    Returns (rows with predicted_s and error_pct, summary per collective and world size)."""
    fabric = fabric or fit_fabric(measured)
    rows = measured.copy()
    rows["predicted_s"] = predict_collective_s(rows["collective"].to_numpy(), rows["bytes"].to_numpy(np.float64),
                                               rows["world_size"].to_numpy(np.float64), fabric)
    rows["error_pct"] = 100.0 * (rows["predicted_s"] - rows["median_s"]) / rows["median_s"]
    rows["fabric_bytes_per_s"] = fabric.scaleup_bytes_per_s
    rows["fabric_latency_s"] = fabric.scaleup_latency_s
    summary = (
        rows.assign(abs_error_pct=rows["error_pct"].abs())
        .groupby(["collective", "world_size"], as_index=False)
        .agg(cases=("bytes", "size"), median_abs_error_pct=("abs_error_pct", "median"),
             max_abs_error_pct=("abs_error_pct", "max"), mean_error_pct=("error_pct", "mean"))
    )
    summary["fabric_bytes_per_s"] = fabric.scaleup_bytes_per_s
    summary["fabric_latency_s"] = fabric.scaleup_latency_s
    return rows, summary
