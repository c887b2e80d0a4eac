"""Medians, ratios, the markdown summary and the raw JSON."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.load import NON_2XX_NOTE, Run
from harness.measure import FLOOR, REPORT, Measured
from harness.profiling import markdown as profile_markdown
from harness.reports import REPORT_WORKERS
from harness.service import Variant

# Issue 8: the upstream Node.js service's ratio to nginx, and the goals for this service; since
# issue 12 they hold for the default configuration (access log on), the headline row.
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
REPORT_NOTE = (
    f" reportWorkerSync: the reports of {REPORT_WORKERS:,} distinct workers (`bench/w<n>`) in "
    "turn, each a receipt and an inventory entry for the pool's 5 cache names (1.6 kB), every "
    "pass through the fleet honouring a newer `before` (a write each time); the client's "
    "scope `purge-cache:report::<pool>:bench/*` covers each worker's."
)
LOG_COST_GOAL = 0.10  # issue 12: the access log costs at most 10% of throughput...
LOG_INSTRUCTIONS_GOAL = 0.05  # ...and at most 5% more instructions per request


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def goal(endpoint: str, backend: str) -> float | None:
    value = GOALS.get(endpoint)
    return value.get(backend) if isinstance(value, dict) else value


def summarize(measured: Measured, backend: str, variants: list[Variant]) -> list[dict[str, Any]]:
    """Per service variant, its medians and ratios to nginx (if nginx ran) for one endpoint."""
    nginx = measured.of("nginx")
    ngx = _medians(nginx)
    out = []
    for variant in variants:
        runs = measured.of(variant.label)
        svc = _medians(runs)
        out.append(
            {
                "endpoint": measured.name,
                "config": variant.label,
                "headline": variant is variants[0],
                "median": {"service": svc, "nginx": ngx},
                "ratio": svc["rps"] / ngx["rps"] if nginx else None,
                "round_ratios": [s.rps / n.rps for s, n in zip(runs, nginx, strict=False)],
                "p99_ratio": svc["p99_ms"] / ngx["p99_ms"] if nginx else None,
                "goal": goal(measured.name, backend) if variant.access_log else None,
                "p99_goal": P99_GOAL.get(measured.name) if variant.access_log else None,
                "upstream": UPSTREAM.get(measured.name),
                "non_2xx": sum(run.non_2xx for run in measured.runs),
                "service_non_2xx": sum(run.non_2xx for run in runs),
                "socket_errors": sum(run.socket_errors for run in measured.runs),
                "service_reused": sum(run.reused for run in runs),
                "service_requests": sum(run.requests for run in runs),
                "service_headers_loaded": sum(run.loaded for run in runs),
                "log_lines_per_request": sum(run.log_lines for run in runs)
                / max(sum(run.requests for run in runs), 1),
                "auth": _auth_summary(runs),
                "warnings": measured.warnings if variant is variants[0] else [],
            }
        )
    return out


def floor_summary(
    measured: Measured, backend: str, variants: list[Variant]
) -> list[dict[str, Any]]:
    """The floor against nginx for one endpoint, and the headline service's share of the
    floor (its req/s ÷ the floor's, round by round); [] when the floor or nginx did not run."""
    floor, nginx, service = measured.of(FLOOR), measured.of("nginx"), measured.of(variants[0].label)
    if not floor or not nginx:
        return []
    medians = _medians(floor)
    return [
        {
            "endpoint": measured.name,
            "floor": medians,
            "nginx": _medians(nginx),
            "ratio": medians["rps"] / _medians(nginx)["rps"],
            "round_ratios": [f.rps / n.rps for f, n in zip(floor, nginx, strict=False)],
            "goal": goal(measured.name, backend),
            "service": variants[0].label,
            "share": _medians(service)["rps"] / medians["rps"],
            "round_shares": [s.rps / f.rps for s, f in zip(service, floor, strict=False)],
        }
    ]


def floor_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Per backend and endpoint: the floor's ratio to nginx against the goal (a goal above it
    is out of reach of any app on granian here), and the headline service's share of it."""
    lines = [
        "| backend | endpoint | floor req/s | floor ÷ nginx (rounds) | goal (for the service) "
        "| service ÷ floor (rounds) | floor p50 / p99 ms | floor CPU µs/req |",
        "|---|---|---:|---|---:|---|---:|---:|",
    ]
    for backend, f in rows:
        ratios = ", ".join(f"{r:.3f}" for r in f["round_ratios"])
        shares = ", ".join(f"{r:.3f}" for r in f["round_shares"])
        goal_text = f"≥ {f['goal']:.2f}{_mark(f['ratio'], f['goal'])}" if f["goal"] else ""
        m = f["floor"]
        lines.append(
            f"| {backend} | {f['endpoint']} | {m['rps']:,.0f} | **{f['ratio']:.3f}** ({ratios}) "
            f"| {goal_text} | **{f['share']:.3f}** ({shares}) "
            f"| {m['p50_ms']:.2f} / {m['p99_ms']:.2f} | {m['server_cpu_us_per_req']:.0f} |"
        )
    return "\n".join(lines)


def _medians(runs: list[Run]) -> dict[str, float]:
    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req", "main_busy", "main_us_per_req")
    return {key: median([getattr(run, key) for run in runs]) for key in keys}


def log_pairs(variants: list[Variant]) -> list[tuple[Variant, Variant]]:
    """(log on, log off) variant pairs of the same revision."""
    return [
        (on, off)
        for on in variants
        for off in variants
        if on.access_log and not off.access_log and on.revision == off.revision
    ]


def log_costs(measured: Measured, backend: str, variants: list[Variant]) -> list[dict[str, Any]]:
    """What the access log costs one endpoint: the same server with the log on against off.
    cost = 1 - median req/s on / median req/s off; the rounds pair the runs in order (the
    harness alternates which of the two runs first)."""
    out = []
    for on, off in log_pairs(variants):
        with_log, without = measured.of(on.label), measured.of(off.label)
        if not with_log or not without:
            continue
        rps_on = median([run.rps for run in with_log])
        rps_off = median([run.rps for run in without])
        cpu_on = median([run.server_cpu_us_per_req for run in with_log])
        cpu_off = median([run.server_cpu_us_per_req for run in without])
        lines = sum(run.log_lines for run in with_log)
        out.append(
            {
                "endpoint": measured.name,
                "revision": on.revision or "checkout",
                "rps_on": rps_on,
                "rps_off": rps_off,
                "cost": 1 - rps_on / rps_off,
                "round_costs": [1 - a.rps / b.rps for a, b in zip(with_log, without, strict=False)],
                "cpu_on": cpu_on,
                "cpu_off": cpu_off,
                "lines_per_request": lines / max(sum(run.requests for run in with_log), 1),
                "bytes_per_line": sum(run.log_bytes for run in with_log) / max(lines, 1),
                "rounds": len(with_log),
            }
        )
    return out


def log_cost_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| backend | endpoint | revision | req/s log on | req/s log off | **throughput cost** "
        "(rounds) | goal | svc CPU µs/req on / off | log lines/req | bytes/line |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for backend, c in rows:
        rounds = ", ".join(f"{x:.1%}" for x in c["round_costs"])
        lines.append(
            f"| {backend} | {c['endpoint']} | {c['revision']} | {c['rps_on']:,.0f} "
            f"| {c['rps_off']:,.0f} | **{c['cost']:.1%}**{_mark(c['cost'], LOG_COST_GOAL, True)} "
            f"({rounds}) | ≤ {LOG_COST_GOAL:.0%} | {c['cpu_on']:.1f} / {c['cpu_off']:.1f} "
            f"| {c['lines_per_request']:.2f} | {c['bytes_per_line']:.0f} |"
        )
    return "\n".join(lines)


def instructions_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| backend | endpoint | revision | instructions/req log on (rounds) "
        "| log off (rounds) | **more with the log** | goal |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for backend, c in rows:
        on = ", ".join(f"{x:,.0f}" for x in c["on_rounds"])
        off = ", ".join(f"{x:,.0f}" for x in c["off_rounds"])
        mark = _mark(c["more"], LOG_INSTRUCTIONS_GOAL, True)
        lines.append(
            f"| {backend} | {c['endpoint']} | {c['revision']} | {c['on']:,.0f} ({on}) "
            f"| {c['off']:,.0f} ({off}) | **{c['more']:+.1%}**{mark} "
            f"| ≤ +{LOG_INSTRUCTIONS_GOAL:.0%} |"
        )
    return "\n".join(lines)


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
        f"{backend} {s['endpoint']} ({s['config']}): the service ran with `--auth-root-url` "
        "against the fake "
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
    """One line per backend, endpoint and service configuration: both sides, both ratios, the
    goals (which hold for the default configuration)."""
    lines = [
        "| backend | endpoint | config | service req/s | nginx req/s | **ratio** (rounds) | goal "
        "| upstream | svc p50 / p99 ms | nginx p50 / p99 ms | **p99 ratio** | svc CPU µs/req "
        "| main thread busy, µs/req | log lines/req | svc non-2xx |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, s in rows:
        svc, ngx = s["median"]["service"], s["median"]["nginx"]
        config = f"**{s['config']}**" if s.get("headline") else s["config"]
        if s["ratio"] is None:
            ratio = p99 = goal_text = nginx = nginx_latency = ""
        else:
            rounds = ", ".join(f"{r:.3f}" for r in s["round_ratios"])
            ratio = f"**{s['ratio']:.3f}**{_mark(s['ratio'], s['goal'])} ({rounds})"
            goal_text = f"≥ {s['goal']:.2f}" if s["goal"] is not None else ""
            p99_goal = f" (≤ {s['p99_goal']:.0f})" if s["p99_goal"] else ""
            p99 = f"**{s['p99_ratio']:.1f}**{_mark(s['p99_ratio'], s['p99_goal'], True)}{p99_goal}"
            nginx = f"{ngx['rps']:,.0f}"
            nginx_latency = f"{ngx['p50_ms']:.2f} / {ngx['p99_ms']:.2f}"
        lines.append(
            f"| {backend} | {s['endpoint']} | {config} | {svc['rps']:,.0f} | {nginx} "
            f"| {ratio} | {goal_text} | {s['upstream'] or ''} "
            f"| {svc['p50_ms']:.2f} / {svc['p99_ms']:.2f} | {nginx_latency} | {p99} "
            f"| {svc['server_cpu_us_per_req']:.0f} "
            f"| {svc.get('main_busy', 0):.0%}, {svc.get('main_us_per_req', 0):.1f} "
            f"| {s.get('log_lines_per_request', 0):.2f} "
            f"| {s['service_non_2xx']} |"
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
        f"`purgecache serve --workers {args.workers} --cache-time {args.cache_time}` "
        "(stdout and stderr appended to a file, as a service manager writes them), configs: "
        + ", ".join(f"`{v.label}`" for v in args.variants)
        + f" · checkout {meta.get('checkout', '?')} "
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
        "each time)." + (REPORT_NOTE if REPORT in args.endpoints else ""),
    ]
    floors = [(r["backend"], f) for r in done for f in r.get("floors", [])]
    if floors:
        parts += [
            "",
            "## The floor: granian replaying the service's answers with no app work",
            "",
            "The same granian settings as `purgecache serve` (RSGI, uvloop, one worker), an app "
            "that answers each path with the service's recorded status, headers and body "
            "(`harness/floor.py`). No app on granian answers faster here: ✓/✗ says whether "
            "the floor itself reaches the service's goal. service ÷ floor is what the "
            f"service's own work leaves of it (`{args.variants[0].label}`).",
            "",
            floor_table(floors),
        ]
    auth = auth_lines([(r["backend"], s) for r in done for s in r["summaries"]])
    if auth:
        parts += ["", *auth]
    costs = [(r["backend"], c) for r in done for c in r.get("log_costs", [])]
    if costs:
        parts += [
            "",
            f"## What the access log costs (the same server, log on vs `--no-access-log`, "
            f"{args.rounds} alternating rounds, medians)",
            "",
            log_cost_table(costs),
        ]
    counted = [(r["backend"], c) for r in done for c in r.get("instructions", [])]
    if counted:
        parts += [
            "",
            "## Instructions per request (callgrind, granian's worker process: every thread, "
            f"user space; {args.cg_rounds} alternating round(s) of {args.cg_seconds:g} s, "
            "medians)",
            "",
            instructions_table(counted),
        ]
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
    if isinstance(value, Variant):
        return value.label
    raise TypeError(type(value).__name__)
