"""The benchmark's targets and its table (rich)."""
from __future__ import annotations

from typing import Any

from emulator.bench.labs import MODE_TITLES, UDP_PAYLOAD

# key -> (">=" or "<=", target); ratios are against the same run's baseline.
TARGETS: dict[str, tuple[str, float]] = {
    "throughput_ratio_offload": (">=", 0.9), "udp_pps_ratio_offload": (">=", 0.8),
    "engine_vs_binding_ratio": (">=", 0.8), "cps_ratio": (">=", 0.6),
    "rtt_added_us_offload": ("<=", 20), "rtt_added_us_no_offload": ("<=", 150),
    "verdict_cost_ratio_rules": ("<=", 1.5), "verdict_cost_ratio_enis": ("<=", 1.5),
    "up_seconds_100": ("<=", 30), "mem_mb_100k_flows": ("<=", 150),
}


def met(key: str, value: float) -> bool:
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target


def table(s: dict[str, Any], fleet_sizes: tuple[int, ...]) -> Any:
    from rich.table import Table

    out = Table(title=f"sgemu benchmark (ratios against (a) of this run; load {s['load_start']} -> {s['load_end']})")
    out.add_column("measure")
    for title in MODE_TITLES.values():
        out.add_column(title, justify="right")
    out.add_column("target", justify="right")

    def row(label: str, values: tuple[str, ...], key: str | None = None) -> None:
        target = ""
        if key is not None:
            op, limit = TARGETS[key]
            target = f"{op} {limit:g} {'ok' if met(key, s[key]) else 'MISSED'}"
        out.add_row(label, *values, *([""] * (4 - len(values))), target)

    row("TCP throughput, Gbit/s", (f"{s['throughput_gbps_plain']:.2f}", f"{s['throughput_gbps_offload']:.2f}",
                                   f"{s['throughput_gbps_no_offload']:.2f}"))
    row("  ratio to (a)", ("1", f"{s['throughput_ratio_offload']:.3f}", f"{s['throughput_ratio_no_offload']:.3f}"),
        "throughput_ratio_offload")
    row("engine verdicts/s during TCP", ("-", f"{s['verdicts_per_s_offload']:.0f}",
                                         f"{s['verdicts_per_s_no_offload']:.0f}"))
    row(f"UDP {UDP_PAYLOAD}-byte packets/s", (f"{s['udp_pps_plain']:.0f}", f"{s['pps_offload']:.0f}",
                                         f"{s['pps_no_offload']:.0f}", f"{s['binding_pps']:.0f}"))
    row("  offload vs (a)", ("1", f"{s['udp_pps_ratio_offload']:.3f}"), "udp_pps_ratio_offload")
    row("  engine vs binding, (c)/(d)", ("", "", f"{s['engine_vs_binding_ratio']:.3f}", "1"),
        "engine_vs_binding_ratio")
    row("queue drops, TCP streams", ("-", str(s["queue_drops_tcp_offload"]), str(s["queue_drops_tcp_no_offload"])))
    row("queue drops, UDP floods", ("-", *(str(s[f"queue_drops_udp_flood_{m}"])
                                           for m in ("offload", "no_offload", "binding"))))
    row("new connections/s (ab, busybox)", (f"{s['cps_plain']:.0f}", f"{s['cps_offload']:.0f}",
                                            f"{s['cps_no_offload']:.0f}"))
    row("  ratio to (a)", ("1", f"{s['cps_ratio']:.3f}", f"{s['cps_ratio_no_offload']:.3f}"), "cps_ratio")
    row("TCP round trip, us",
        (f"{s['rtt_us_plain']:.1f}", f"{s['rtt_us_offload']:.1f}", f"{s['rtt_us_no_offload']:.1f}"))
    row("  added, us (offload)", ("", f"{s['rtt_added_us_offload']:.1f}"), "rtt_added_us_offload")
    row("  added, us (no offload)", ("", "", f"{s['rtt_added_us_no_offload']:.1f}"), "rtt_added_us_no_offload")
    pull = s["pullback"]
    row(f"pull back {pull['flows']} offloaded flows, ms", ("", f"{pull['recall_all_ms']:.1f}"))
    row("verdict cost, 1000 vs 1 rule per SG", ("", f"{s['verdict_cost_ratio_rules']:.2f}x"),
        "verdict_cost_ratio_rules")
    row("verdict cost, 500 vs 2 ENIs", ("", f"{s['verdict_cost_ratio_enis']:.2f}x"), "verdict_cost_ratio_enis")
    for count in fleet_sizes:
        times = f"{s[f'up_seconds_{count}']:.1f} / {s[f'down_seconds_{count}']:.1f}"
        row(f"lab of {count}: up / down, s", ("", times), "up_seconds_100" if count == 100 else None)
    rss = f"{s['mem_mb_100k_flows']:.1f} (+{s['mem_added_mb_100k_flows']:.1f})"
    row("engine RSS with 100k flows, MB", ("", rss), "mem_mb_100k_flows")
    return out
