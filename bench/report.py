"""The bench's printed report: one table, every rate beside its ratio to the direct-POST
ceiling measured in the same run, then where the CPU went."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str]


def ratio(rate: float, ceiling: float) -> str:
    return f"{rate / ceiling:.1%}" if ceiling else ""


def rate_row(name: str, rate: float, ceiling: float, target: str) -> Row:
    return (name, f"{rate:,.0f}", ratio(rate, ceiling), target)


def latency_row(name: str, e: dict[str, Any], target: str) -> Row:
    figures = f"{e['latency_p50_ms']:.0f} / {e['latency_p95_ms']:.0f} / {e['latency_p99_ms']:.0f}"
    return (f"{name} p50 / p95 / p99 ms", figures, "", target)


def loss_row(name: str, e: dict[str, Any]) -> Row:
    return (f"{name} lost / duplicates", f"{e['lost']:.0f} / {e['duplicates']:.0f}", "", "0")


def end_to_end_rows(r: dict[str, Any], c: float) -> list[Row]:
    e = r["end_to_end"]
    return [
        rate_row("uploads accepted /s (2,000 x 1 KiB, c=32)", e["uploads_per_s"], c, "≥ 570"),
        rate_row("deliveries /s end to end", e["deliveries_per_s"], c, "≥ 1,000 or ≥ 12 %"),
        latency_row("upload→delivery", e, "p99 ≤ 250"),
        loss_row("uploads", e),
    ]


def events_rows(r: dict[str, Any], c: float) -> list[Row]:
    e = r["events"]
    return [
        rate_row("events accepted /s (POST /event, 1 KiB, c=32)", e["events_per_s"], c, ""),
        rate_row("event deliveries /s end to end", e["deliveries_per_s"], c, "≥ 1,500 or ≥ 20 %"),
        latency_row("event→delivery", e, ""),
        loss_row("events", e),
    ]


def fan_out_rows(r: dict[str, Any], c: float) -> list[Row]:
    f = r["fan_out"]
    return [
        ("fan-out: POST /event to 1,000 webhooks, request ms", f"{f['request_ms']:.0f}", "", ""),
        (
            "fan-out: 202 → last of 1,000 delivered, s",
            f"{f['delivered_after_202_s']:.2f}",
            "",
            "≤ 0.5",
        ),
        rate_row("fan-out: deliveries /s after the 202", f["deliveries_per_s"], c, ""),
        *fan_out_of_many_types_rows(r, f),
    ]


def fan_out_of_many_types_rows(r: dict[str, Any], one: dict[str, Any]) -> list[Row]:
    """The same fan-out over webhooks that subscribe to 10 types each, beside one type's."""
    many = r.get("fan_out_10_types")
    if many is None:
        return []
    ratio = many["delivered_after_202_s"] / max(one["delivered_after_202_s"], 1e-6)
    return [
        (
            "fan-out, webhooks of 10 types each: 202 → last, s (ratio to 1 type)",
            f"{many['delivered_after_202_s']:.2f} ({ratio:.2f})",
            "",
            "about 1",
        )
    ]


def open_rows(r: dict[str, Any], c: float) -> list[Row]:
    o = r["open_at_once"]
    return [
        (
            "1 s receivers, 5,000 over 100 webhooks: most open",
            f"{o['max_open']:.0f}",
            "",
            "≥ 2,000",
        ),
        ("  drained in s", f"{o['drain_s']:.1f}", "", "≤ 4"),
        ("  dispatcher peak RSS MiB", f"{o['dispatcher_peak_rss_mib']:.0f}", "", "≤ 256"),
    ]


def backlog_rows(r: dict[str, Any], c: float) -> list[Row]:
    b = r["backlog"]
    return [
        rate_row(
            "backlog: events accepted /s, dispatcher stopped", b["filled_events_per_s"], c, ""
        ),
        rate_row("backlog: drained /s", b["drain_per_s"], c, "≥ end to end"),
        ("backlog: dispatcher peak RSS MiB", f"{b['dispatcher_peak_rss_mib']:.0f}", "", "≤ 256"),
        during_drain("uploads", b["idle_uploads_per_s"], b["drain_uploads_per_s"], c),
        during_drain("events", b["idle_events_per_s"], b["drain_events_per_s"], c),
    ]


def during_drain(what: str, idle: float, during: float, c: float) -> Row:
    return (
        f"backlog: {what} accepted /s idle → during the drain",
        f"{idle:,.0f} → {during:,.0f} ({ratio(during, idle)} of idle)",
        f"{ratio(idle, c)} → {ratio(during, c)}",
        "≥ 50 % of idle",
    )


def other_rows(r: dict[str, Any], c: float) -> list[Row]:
    rows: list[Row] = []
    if "slow_receivers" in r:
        s = r["slow_receivers"]
        rows += [
            ("1 s receivers, 300 over 30 endpoints: most open", f"{s['max_open']:.0f}", "", ""),
            ("  drained in s", f"{s['drain_s']:.1f}", "", ""),
        ]
    if "isolation" in r:
        i = r["isolation"]
        rows.append(
            (
                "isolation: healthy p50 / p99 ms beside a dead endpoint",
                f"{i['healthy_p50_ms']:.0f} / {i['healthy_p99_ms']:.0f}",
                "",
                "p99 ≤ 500",
            )
        )
    if "api" in r:
        a = r["api"]
        rows += [
            rate_row("GET /event_type /s (c=32)", a["event_type_per_s"], c, ""),
            rate_row("POST /webhook/register /s (c=32)", a["register_per_s"], c, ""),
        ]
    if "big_file" in r:
        b = r["big_file"]
        rows += [
            (f"big file: MB/s ({r['big_file_mib']} MiB)", f"{b['mb_per_s']:.0f}", "", ""),
            (
                "big file: upload service peak RSS growth MiB",
                f"{b['rss_growth_mib']:.1f}",
                "",
                "≤ 64",
            ),
        ]
    return rows


def floor_rows(r: dict[str, Any], c: float) -> list[Row]:
    """Events end to end, the product beside the floor (bench/floor.py), alternated rounds."""
    f = r["floor"]
    rounds = ", ".join(f"{x:.2f}" for x in f["ratios"])
    return [
        rate_row("floor: event deliveries /s end to end", f["floor_deliveries_per_s"], c, ""),
        rate_row("product: event deliveries /s beside it", f["product_deliveries_per_s"], c, ""),
        ("product / floor, deliveries /s (rounds)", f"{f['ratio']:.2f} ({rounds})", "", "≥ 1.25"),
        (
            "CPU ms per delivery, product / floor",
            f"{f['product_cpu_ms_per_delivery']:.2f} / {f['floor_cpu_ms_per_delivery']:.2f}",
            "",
            "",
        ),
    ]


def ordered_rows(r: dict[str, Any], c: float) -> list[Row]:
    """Ordered delivery per key beside the same events without a key, in the same run."""
    o = r["ordered"]
    unordered = o["unordered_deliveries_per_s"]

    def row(name: str, run: str, target: str) -> Row:
        rate = o[f"{run}_deliveries_per_s"]
        latency = (
            f"p50 {o[f'{run}_latency_p50_ms']:.0f} ms, p99 {o[f'{run}_latency_p99_ms']:.0f} ms"
        )
        share = "" if run == "unordered" else f" ({ratio(rate, unordered)} of no key)"
        return (f"{name} ({latency})", f"{rate:,.0f}{share}", ratio(rate, c), target)

    return [
        row("ordered: event deliveries /s, no key", "unordered", ""),
        row("ordered: 100 keys", "keys_100", "≥ 70 % of no key"),
        row("ordered: 1 key", "key_1", ""),
        (
            "ordered: lost (no key / 100 keys / 1 key)",
            f"{o['unordered_lost']:.0f} / {o['keys_100_lost']:.0f} / {o['key_1_lost']:.0f}",
            "",
            "0",
        ),
    ]


def big_tables_rows(r: dict[str, Any], c: float) -> list[Row]:
    b = r["big_tables"]
    rows: list[Row] = [
        (
            f"big tables: {name} p50 / p99 ms (c={b['clients']})",
            f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f}",
            "",
            "p99 ≤ 100",
        )
        for name, m in b["routes"].items()
    ]
    empty, loaded = b["e2e_empty_per_s"], b["e2e_loaded_per_s"]
    retention = b["retention"]
    return [
        *rows,
        rate_row("big tables: deliveries /s end to end, empty database", empty, c, ""),
        (
            f"big tables: deliveries /s end to end, {b['rows']:,} deliveries there",
            f"{loaded:,.0f}",
            f"{loaded / empty:.1%} of empty" if empty else "",
            "≥ 85 % of empty",
        ),
        (
            "big tables: one day's retention, s (deliveries removed)",
            f"{retention['retention_s']:.2f} ({retention['deliveries_removed']:,.0f})",
            "",
            "",
        ),
        (
            "big tables: upload max ms before / during retention",
            f"{retention['ingest_max_ms_before']:.0f} / {retention['ingest_max_ms_during']:.0f}",
            "",
            "",
        ),
        (
            "big tables: longest lock wait during retention, ms",
            f"{retention['longest_lock_wait_ms']:.0f}",
            "",
            "≤ 100",
        ),
    ]


SECTIONS = {
    "end_to_end": end_to_end_rows,
    "events": events_rows,
    "fan_out": fan_out_rows,
    "open_at_once": open_rows,
    "backlog": backlog_rows,
    "floor": floor_rows,
    "ordered": ordered_rows,
    "big_tables": big_tables_rows,
}


def table(results: dict[str, Any]) -> str:
    c = results["ceiling_per_s"]
    rows: list[Row] = [rate_row("direct POST ceiling /s (same client → receiver)", c, c, "")]
    for key, section in SECTIONS.items():
        if key in results:
            rows += section(results, c)
    rows += other_rows(results, c)
    width = max(len(row[0]) for row in rows)
    lines = [
        f"| {'scenario'.ljust(width)} | measured | ratio to ceiling | target |",
        f"|{'-' * (width + 2)}|---:|---:|---|",
    ]
    lines += [f"| {n.ljust(width)} | {v} | {q} | {t} |" for n, v, q, t in rows]
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    load = " ".join(f"{x:.2f}" for x in results["load_average"])
    lines = [results["configuration"], f"load average at the start: {load}", "", table(results)]
    if "cpu_ms_per_delivery" in results:
        lines.append("\nCPU ms per delivery, by component (end-to-end run):")
        for name, ms in sorted(results["cpu_ms_per_delivery"].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<20} {ms:7.3f}")
        shares = results["machine_cpu"]
        lines.append(
            f"machine CPU during it: {shares['busy']:.0%} busy, {shares['iowait']:.0%} waiting"
            f" on I/O, {shares['idle']:.0%} idle"
        )
    if "events_cpu_ms_per_delivery" in results:
        lines.append("\nCPU ms per delivery, by component (events end to end):")
        ranked = sorted(results["events_cpu_ms_per_delivery"].items(), key=lambda kv: -kv[1])
        lines += [f"  {name:<20} {ms:7.3f}" for name, ms in ranked]
    drain = results.get("backlog", {})
    if "drain_cpu_ms_per_delivery" in drain:
        lines.append("\nCPU ms per delivery, by component (backlog drain):")
        ranked = sorted(drain["drain_cpu_ms_per_delivery"].items(), key=lambda kv: -kv[1])
        lines += [f"  {name:<20} {ms:7.3f}" for name, ms in ranked]
        shares = drain["drain_machine_cpu"]
        lines.append(f"machine CPU during it: {shares['busy']:.0%} busy, {shares['idle']:.0%} idle")
    for name, ms in results.get("dispatcher_metrics", {}).items():
        lines.append(f"dispatcher (since its last start) {name}: {ms:.1f}")
    lines.append(
        f"creating an upload's folder and file here: {results['folder_cost_ms']:.2f} ms of CPU"
        " (~0.05 when nothing was deleted nearby in the last minutes; see README)"
    )
    return "\n".join(lines)
