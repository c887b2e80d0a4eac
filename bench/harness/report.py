"""Medians, ratios, the markdown summary and the raw JSON."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.load import NON_2XX_NOTE, Run
from harness.measure import Measured
from harness.profiling import markdown as profile_markdown

# Issue 8: the upstream Node.js service's ratio to nginx, and the goals for this service.
UPSTREAM = {
    "purgeRequests": 0.045,
    "purgeRequestsRemoteAuth": 0.05,
    "purgeCache": 0.025,
    "allPurgeRequests": 0.0065,
    "ping": 0.18,
}
GOALS: dict[str, float | dict[str, float]] = {
    "purgeRequests": 0.40,
    "purgeRequestsRemoteAuth": 0.15,  # 3x upstream's ratio, with remote auth
    "ping": 0.60,
    "purgeCache": {"sqlite": 0.12, "postgres": 0.08},
    "allPurgeRequests": 0.07,
}
P99_GOAL = {"purgeRequests": 3.0}  # service p99 at most 3x nginx's


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def goal(endpoint: str, backend: str) -> float | None:
    value = GOALS.get(endpoint)
    return value.get(backend) if isinstance(value, dict) else value


def summarize(measured: Measured, backend: str) -> dict[str, Any]:
    """Medians per side and the service/nginx ratios of one endpoint."""
    sides = {label: measured.of(label) for label in ("service", "nginx")}
    med = {
        label: {
            key: median([getattr(run, key) for run in runs])
            for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req")
        }
        for label, runs in sides.items()
    }
    pairs = list(zip(sides["service"], sides["nginx"], strict=False))
    ratio = med["service"]["rps"] / med["nginx"]["rps"]
    p99_ratio = med["service"]["p99_ms"] / med["nginx"]["p99_ms"]
    return {
        "endpoint": measured.name,
        "median": med,
        "ratio": ratio,
        "round_ratios": [s.rps / n.rps for s, n in pairs],
        "p99_ratio": p99_ratio,
        "goal": goal(measured.name, backend),
        "p99_goal": P99_GOAL.get(measured.name),
        "upstream": UPSTREAM.get(measured.name),
        "non_2xx": sum(run.non_2xx for run in measured.runs),
        "service_non_2xx": sum(run.non_2xx for run in sides["service"]),
        "socket_errors": sum(run.socket_errors for run in measured.runs),
        "service_reused": sum(run.reused for run in sides["service"]),
        "service_requests": sum(run.requests for run in sides["service"]),
        "service_headers_loaded": sum(run.loaded for run in sides["service"]),
        "auth": _auth_summary(sides["service"]),
        "warnings": measured.warnings,
    }


def _auth_summary(service_runs: list[Run]) -> dict[str, float] | None:
    """With remote auth: calls to the fake auth service per service request, and its CPU."""
    if not any(run.auth_calls for run in service_runs):
        return None
    return {
        "calls_per_request": sum(run.auth_calls for run in service_runs)
        / max(sum(run.requests for run in service_runs), 1),
        "cpu_us_per_req": median([run.auth_cpu_us_per_req for run in service_runs]),
    }


def auth_lines(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One sentence per remote-auth row: how often the fake auth service was asked, its CPU."""
    return [
        f"{backend} {s['endpoint']}: the service ran with `--auth-root-url` against the fake "
        f"auth nginx (fixed `auth-success` verdict), which answered "
        f"{s['auth']['calls_per_request']:.2f} authenticate-hawk calls per service request "
        f"(no verdict is cached) and spent {s['auth']['cpu_us_per_req']:.0f} µs CPU per request, "
        "not included in svc CPU."
        for backend, s in rows
        if s.get("auth")
    ]


def _mark(value: float, target: float | None, at_most: bool = False) -> str:
    if target is None:
        return ""
    met = value <= target if at_most else value >= target
    return " ✓" if met else " ✗"


def throughput_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per backend and endpoint: both sides, both ratios, the goals."""
    lines = [
        "| backend | endpoint | service req/s | nginx req/s | **ratio** (rounds) | goal "
        "| upstream | svc p50 / p99 ms | nginx p50 / p99 ms | **p99 ratio** | svc CPU µs/req "
        "| svc non-2xx |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, s in rows:
        svc, ngx = s["median"]["service"], s["median"]["nginx"]
        rounds = ", ".join(f"{r:.3f}" for r in s["round_ratios"])
        goal_text = f"≥ {s['goal']:.2f}" if s["goal"] is not None else ""
        p99_goal = f" (≤ {s['p99_goal']:.0f})" if s["p99_goal"] else ""
        lines.append(
            f"| {backend} | {s['endpoint']} | {svc['rps']:,.0f} | {ngx['rps']:,.0f} "
            f"| **{s['ratio']:.3f}**{_mark(s['ratio'], s['goal'])} ({rounds}) | {goal_text} "
            f"| {s['upstream'] or ''} "
            f"| {svc['p50_ms']:.2f} / {svc['p99_ms']:.2f} "
            f"| {ngx['p50_ms']:.2f} / {ngx['p99_ms']:.2f} "
            f"| **{s['p99_ratio']:.1f}**{_mark(s['p99_ratio'], s['p99_goal'], True)}{p99_goal} "
            f"| {svc['server_cpu_us_per_req']:.0f} | {s['service_non_2xx']} |"
        )
    return "\n".join(lines)


PAGING_RATIO_KEYS = ("p50_ms", "ms_per_request", "server_cpu_us_per_req")


def paging_summary(probes: dict[str, Measured]) -> dict[str, Any]:
    """Per probe, medians over the rounds: mean latency at one connection (= ms per request),
    p50, p99, req/s and the service's CPU per request."""
    out: dict[str, Any] = {}
    for name, measured in probes.items():
        runs = measured.runs
        out[name] = {
            "ms_per_request": median([run.mean_ms for run in runs]),
            "p50_ms": median([run.p50_ms for run in runs]),
            "p99_ms": median([run.p99_ms for run in runs]),
            "rps": median([run.rps for run in runs]),
            "server_cpu_us_per_req": median([run.server_cpu_us_per_req for run in runs]),
            "round_ms": [run.mean_ms for run in runs],
            "non_2xx": sum(run.non_2xx for run in runs),
            "reused": sum(run.reused for run in runs),
        }
    return out


def paging_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The probes of each backend, then the last/first ratios."""
    lines = [
        "| backend | probe | ms/request (rounds) | p50 ms | p99 ms | svc CPU µs/req | non-2xx |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for backend, paging in rows:
        for name, p in paging["probes"].items():
            rounds = ", ".join(f"{x:.2f}" for x in p["round_ms"])
            lines.append(
                f"| {backend} | {name} | **{p['ms_per_request']:.2f}** ({rounds}) "
                f"| {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['server_cpu_us_per_req']:,.0f} "
                f"| {p['non_2xx']} |"
            )
        r = paging["ratios"]
        lines.append(
            f"| {backend} | **last page {paging['table']} ÷ first page 1k** "
            f"| **{r['ms_per_request']:.2f}×** | **{r['p50_ms']:.2f}×** | "
            f"| **{r['server_cpu_us_per_req']:.2f}×** | |"
        )
    return "\n".join(lines)


def rss_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| backend | server | pid | role | VmRSS MB |", "|---|---|---:|---|---:|"]
    for row in rows:
        mb = f"{row['rss_kib'] / 1024:.1f}" if row["rss_kib"] is not None else "gone"
        lines.append(
            f"| {row['backend']} | {row['server']} | {row['pid']} | {row['role']} | {mb} |"
        )
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, meta: dict[str, Any]) -> str:
    """The whole summary: throughput, paging, RSS, profiles, notes."""
    done = [r for r in results if "skipped" not in r]
    parts = [
        f"# purgecache vs nginx — {meta['started']}",
        "",
        f"`{meta['command']}` · wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s "
        f"--latency, {args.warmup:g} s warm-up, {args.rounds} round(s), medians · "
        f"`purgecache serve --workers {args.workers} --cache-time {args.cache_time} "
        f"--no-access-log` · checkout {meta.get('checkout', '?')} "
        f"(purgecache from {meta.get('purgecache_from', '?')}) · {meta['host']} · "
        + ", ".join(f"{name} {v}" for name, v in meta.get("versions", {}).items())
        + f" · {meta.get('scheduling', 'scheduling: ?')}",
        "",
        "## Throughput (ratio = service req/s ÷ nginx req/s; p99 ratio = service p99 ÷ nginx p99)",
        "",
        throughput_table([(r["backend"], s) for r in done for s in r["summaries"]]),
        "",
        "Every service request carried its own valid Hawk header. non-2xx: "
        f"{NON_2XX_NOTE}. purgeCache: a new cache name per request (`bench-<n>`: an insert "
        "each time).",
    ]
    auth = auth_lines([(r["backend"], s) for r in done for s in r["summaries"]])
    if auth:
        parts += ["", *auth]
    paging = [(r["backend"], r["paging"]) for r in done if "paging" in r]
    if paging:
        parts += [
            "",
            f"## allPurgeRequests limit=1000 at one connection ({args.paging_duration:g} s per "
            f"probe, {args.rounds} round(s), medians; ratios of ms/request, p50 and CPU)",
            "",
            paging_table(paging),
        ]
    rss = [row for r in done for row in r["rss"]]
    for moment in dict.fromkeys(row["moment"] for row in rss):
        parts += ["", f"## RSS ({moment})", ""]
        parts.append(rss_table([row for row in rss if row["moment"] == moment]))
    for r in done:
        for endpoint, profile in r.get("profiles", {}).items():
            parts += [
                "",
                profile_markdown(f"py-spy, {r['backend']}, {endpoint}", profile["summary"]),
            ]
    notes = [f"- {r['backend']}: skipped: {r['skipped']}" for r in results if "skipped" in r]
    notes += [f"- {r['backend']}: {w}" for r in done for s in r["summaries"] for w in s["warnings"]]
    notes += [f"- {r['backend']}: {n}" for r in done for n in r["notes"]]
    if notes:
        parts += ["", "## Notes", "", *notes]
    return "\n".join(parts) + "\n"


def write_results(directory: Path, stamp: str, markdown: str, raw: dict[str, Any]) -> Path:
    """bench/results/<stamp>.md and .json; returns the .md path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stamp}.json").write_text(json.dumps(raw, indent=1, default=_jsonable))
    path = directory / f"{stamp}.md"
    path.write_text(markdown)
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, Run):
        return value.as_dict()
    if isinstance(value, Measured):
        return {"name": value.name, "runs": value.runs, "warnings": value.warnings}
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)
