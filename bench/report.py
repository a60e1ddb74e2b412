"""results.json -> results.md (tables, goals) and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path

GOALS = {
    "instant_half_of_bare": "Instant POST at R = 1,000 reaches at least half the bare endpoint's requests/s (1 worker)",
    "instant_p99_5ms": "... with p99 under 5 ms server-side at 4 concurrent clients on one worker",
    "r10000_p99_20ms": "R = 10,000 has p99 under 20 ms (server-side, 1 worker)",
    "memory_500mb": "Per-worker memory under 500 MB at every R",
    "no_growth": "No memory growth over 100,000 requests",
    "reload_1s": "Reload of 1,000 rules activates in under 1 s",
    "reload_no_failures": "... with zero failed requests",
    "store_not_linear": "Store writes do not slow down linearly with the stored records",
}


def _row(rows, config, rules):
    return next((r for r in rows if r["config"] == config and r["rules"] == rules), None)


def evaluate_goals(results: dict) -> list[dict]:
    out = []
    rows = results.get("http", [])
    one = "1 worker, pinned"

    def add(key, met, figure):
        out.append({"goal": key, "text": GOALS[key], "met": met, "figure": figure})

    r1000 = _row(rows, one, 1000)
    if r1000:
        add("instant_half_of_bare", r1000["ratio_rps"] >= 0.5,
            f"{r1000['instant']['rps']} vs {r1000['bare']['rps']} req/s = {r1000['ratio_rps']:.3f} of bare")
        p99 = r1000["instant"]["server"]["p99_ms"]
        add("instant_p99_5ms", p99 < 5, f"server p99 {p99} ms (client p99 {r1000['instant']['p99_ms']} ms)")
    r10000 = _row(rows, one, 10000)
    if r10000:
        p99 = r10000["instant"]["server"]["p99_ms"]
        add("r10000_p99_20ms", p99 < 20, f"server p99 {p99} ms (engine alone p99 "
                                        f"{_engine(results, 10000, 'p99_us')} µs)")
    if rows:
        biggest = max(max(r["rss_kib"].values()) for r in rows if r["rss_kib"])
        add("memory_500mb", biggest < 500 * 1024, f"largest worker {biggest / 1024:.0f} MiB")
    growth = results.get("memory", {})
    http_growth = growth.get("http")
    loop = growth.get("engineLoop")
    if http_growth or loop:
        parts, met = [], True
        if http_growth:
            parts.append(f"HTTP: {http_growth['requests']} requests in {http_growth['seconds']} s, "
                         f"RSS {http_growth['rssAfterTenth_kib'] / 1024:.1f} -> {http_growth['rssEnd_kib'] / 1024:.1f} MiB "
                         f"after the first tenth")
            met = met and http_growth["growthAfterTenth_kib"] < 5 * 1024
            if met and not http_growth["reachedTarget"]:
                met = None                  # no growth seen, but over fewer requests than the goal names
        if loop:
            first = loop["rss_kib"][min(len(loop["rss_kib"]) - 1, len(loop["rss_kib"]) // 10)][1]
            last = loop["rss_kib"][-1][1]
            parts.append(f"engine loop: {loop['evaluations']} evaluations, RSS {first / 1024:.1f} -> {last / 1024:.1f} MiB")
            if (last - first) >= 5 * 1024:
                met = False
        add("no_growth", met, "; ".join(parts))
    reload = next((r for r in results.get("reload", []) if r["rules"] == 1000), None)
    if reload:
        add("reload_1s", reload["activation_s"] is not None and reload["activation_s"] < 1,
            f"new version answered {reload['activation_s']} s after the file was replaced")
        add("reload_no_failures", reload["failed"] == 0,
            f"{reload['failed']} failed, {reload['slowedDuringReload']} of {reload['duringReload']} slowed "
            f"(> {reload['slowThreshold_ms']} ms) during the reload, max {reload['maxDuringReload_ms']} ms")
    store = results.get("store", [])
    if store:
        notes, met = [], True
        for api in ("TMF629 create", "TMF680 async create"):
            series = sorted((r["stored"], r["p50_ms"]) for r in store if r["api"] == api)
            if len(series) >= 2:
                (n0, t0), (n1, t1) = series[0], series[-1]
                slope = (t1 / t0) / (n1 / n0) if t0 else 0
                notes.append(f"{api}: p50 {t0} ms at {n0} -> {t1} ms at {n1} records "
                             f"(x{t1 / t0:.1f} for x{n1 / n0:.0f} records)")
                met = met and slope < 0.1
        add("store_not_linear", met, "; ".join(notes))
    return out


def _engine(results, rules, key):
    row = next((r for r in results.get("engine", []) if r["rules"] == rules), None)
    return row["eval"][key] if row else None


def markdown(results: dict) -> str:
    meta = results["meta"]
    lines = [f"# Benchmark results ({meta['mode']} run)", "",
             f"{meta['started']} · {meta['machine']} · Python {meta['python']} · client: {meta['client']} · "
             f"seed {meta['seed']} · N = {meta['offerings']} offerings, {meta['customers']} customers "
             f"({meta['products']} products) · load average at start {meta['loadavgStart']}, end "
             f"{meta.get('loadavgEnd')} · wall time {meta.get('wall_s')} s · tree {meta.get('git', {}).get('head')}"
             f" + uncommitted {', '.join(meta.get('git', {}).get('uncommittedAppFiles') or []) or 'nothing'} in app/",
             ""]
    if results.get("engine"):
        lines += ["## Engine only (in-process, no HTTP)", "",
                  "| R | chunks (always) | load s | compile s | RSS +load/+compile MiB | eval p50 µs | eval p99 µs | durable p50 µs | "
                  "chunks asked | rules fired | recommender p50 µs (store + engine) | cold RuleService s | hot reload s |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["engine"]:
            e, rec = r["eval"], r.get("recommender") or {}
            lines.append(f"| {r['rules']:,} | {r['load']['chunks']} ({r['load']['alwaysChunks']}) | "
                         f"{r['load']['rulesetLoad_s']} | {r['load']['compile_s']} | "
                         f"{r['load'].get('rssLoad_kib', 0) / 1024:.0f}/{r['load'].get('rssCompile_kib', 0) / 1024:.0f} | "
                         f"{e['p50_us']} | {e['p99_us']} | "
                         f"{e['durable_p50_us']} | {e['chunksEvaluated_mean']} | {e['firedRules_mean']} | "
                         f"{rec.get('p50_us', '–')} | {r.get('coldService_s', '–')} | {r.get('hotReload_s', '–')} |")
        lines.append("")
    if results.get("http"):
        lines += ["## Over HTTP (gunicorn gthread, 4 threads per worker)", "",
                  "Client figures from the load client; `srv` = server-side (gunicorn access log %(D)s).", "",
                  "| config | R | bare req/s | instant req/s | ratio | instant p50 ms | instant p99 ms | srv p50 | srv p99 | "
                  "anonymous req/s | anon srv p99 | bare p99 ms | RSS/worker MiB | errors | load avg |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["http"]:
            i, b, a = r["instant"], r["bare"], r.get("instantAnonymous")
            rss = "/".join(f"{v / 1024:.0f}" for v in sorted(r["rss_kib"].values()))
            lines.append(f"| {r['config']} ({r['connections']} conn) | {r['rules']:,} | {b['rps']} | {i['rps']} | "
                         f"{r['ratio_rps']:.3f} | {i['p50_ms']} | {i['p99_ms']} | {i['server']['p50_ms']} | "
                         f"{i['server']['p99_ms']} | {a['rps'] if a else '–'} | "
                         f"{a['server']['p99_ms'] if a else '–'} | {b['p99_ms']} | {rss} | "
                         f"{i['errors'] + b['errors'] + (a['errors'] if a else 0)} | "
                         f"{max(b['loadavg'] + i['loadavg']):.1f} |")
        lines.append("")
    mem = results.get("memory", {})
    if mem:
        lines += ["## Memory growth", ""]
        h = mem.get("http")
        if h:
            lines.append(f"- HTTP, 1 worker, R = {h['rules']:,}: {h['requests']:,} requests (target {h['target']:,}) "
                         f"in {h['seconds']} s; RSS {h['rssStart_kib'] / 1024:.1f} MiB at start, "
                         f"{h['rssAfterTenth_kib'] / 1024:.1f} MiB after the first tenth, {h['rssEnd_kib'] / 1024:.1f} MiB "
                         f"at the end (growth after the first tenth: {h['growthAfterTenth_kib'] / 1024:+.1f} MiB).")
        loop = mem.get("engineLoop")
        if loop:
            pts = loop["rss_kib"]
            lines.append(f"- In-process engine loop, R = {loop['rules']:,}: {loop['evaluations']:,} evaluations in "
                         f"{loop['seconds']} s; RSS {pts[0][1] / 1024:.1f} -> {pts[len(pts) // 10][1] / 1024:.1f} "
                         f"(after a tenth) -> {pts[-1][1] / 1024:.1f} MiB.")
        lines.append("")
    if results.get("reload"):
        lines += ["## Hot reload under load (1 worker, 4 connections)", "",
                  "| R | activation s | all answers new after s | requests in window | failed | slowed | max ms | "
                  "baseline p99 ms | worker RSS before -> after MiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["reload"]:
            lines.append(f"| {r['rules']:,} | {r['activation_s']} | {r['allNewAfter_s']} | {r['duringReload']} | "
                         f"{r['failed']} | {r['slowedDuringReload']} (> {r['slowThreshold_ms']} ms) | "
                         f"{r['maxDuringReload_ms']} | {r['baselineP99_ms']} | "
                         f"{r['rssBefore_kib'] / 1024:.0f} -> {(r['rssAfter_kib'] or 0) / 1024:.0f} |")
        lines.append("")
    if results.get("store"):
        lines += ["## Store writes (1 worker, 4 connections)", "",
                  "| API | stored records | file MiB | creates | creates/s | p50 ms | p99 ms | srv p50 ms | "
                  "async: done/s (drain s) | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["store"]:
            done = (f"{r['completedPerSecond']} ({r['drain_s']}; {r['pendingAtTimeout']} pending)"
                    if "completed" in r else "–")
            lines.append(f"| {r['api']} | {r['stored']:,} | {r['fileMiB']} | {r['requests']} | {r['rps']} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['serverP50_ms']} | {done} | {r['errors']} |")
        lines.append("")
    if results.get("storeLookups"):
        s = results["storeLookups"]
        lines += ["## Where the instant POST spends its time: store look-ups", "",
                  "| stored customers (products) | build_context p50 µs | recommend p50 µs | share in build_context |"
                  " store.all(product) µs | indexed look-up µs |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in s:
            lines.append(f"| {r['customers']:,} ({r['products']:,}) | {r['buildContext_p50_us']} | {r['p50_us']} | "
                         f"{r['buildContext_share']:.0%} | {r['allProducts_us']} | {r['indexed_us']} |")
        lines.append("")
    goals = results.get("goals", [])
    if goals:
        lines += ["## Goals", "", "| goal | met | figure |", "|---|---|---|"]
        for g in goals:
            verdict = "yes" if g["met"] else ("not shown" if g["met"] is None else "**no**")
            lines.append(f"| {g['text']} | {verdict} | {g['figure']} |")
        lines.append("")
    return "\n".join(lines)


def plots(results: dict, out: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    engine = results.get("engine", [])
    http = results.get("http", [])
    if engine or http:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        if engine:
            rs = [r["rules"] for r in engine]
            ax.plot(rs, [r["eval"]["p50_us"] / 1000 for r in engine], "o-", label="engine only p50")
            ax.plot(rs, [r["eval"]["p99_us"] / 1000 for r in engine], "o--", label="engine only p99")
        for config, marker in (("1 worker, pinned", "s"), ("2 workers", "^")):
            rows = [r for r in http if r["config"] == config]
            if rows:
                rs = [r["rules"] for r in rows]
                ax.plot(rs, [r["instant"]["server"]["p50_ms"] for r in rows], marker + "-",
                        label=f"HTTP instant p50 (server), {config}")
                ax.plot(rs, [r["instant"]["server"]["p99_ms"] for r in rows], marker + "--",
                        label=f"HTTP instant p99 (server), {config}")
                if config == "1 worker, pinned" and rows[0].get("instantAnonymous"):
                    ax.plot(rs, [r["instantAnonymous"]["server"]["p99_ms"] for r in rows], marker + ":",
                            label="HTTP anonymous p99 (server), 1 worker")
        ax.axhline(5, color="grey", lw=0.8, ls=":")
        ax.axhline(20, color="grey", lw=0.8, ls=":")
        written.append(_save_log_log(plt, fig, ax, out / "latency-vs-rules.png", "rules (R)", "latency, ms (log)", "Latency against rule count", 7))
    if http:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for config, marker in (("1 worker, pinned", "s"), ("2 workers", "^")):
            rows = [r for r in http if r["config"] == config]
            if rows:
                rs = [r["rules"] for r in rows]
                ax.plot(rs, [r["bare"]["rps"] for r in rows], marker + "--", label=f"bare Flask, {config}")
                ax.plot(rs, [r["instant"]["rps"] for r in rows], marker + "-", label=f"TMF680 instant, {config}")
                if rows[0].get("instantAnonymous"):
                    ax.plot(rs, [r["instantAnonymous"]["rps"] for r in rows], marker + ":",
                            label=f"TMF680 instant, anonymous, {config}")
        written.append(_save_log_log(plt, fig, ax, out / "throughput-vs-rules.png", "rules (R)", "requests/s (log)", "Throughput against rule count", 7))
    mem = results.get("memory", {})
    if http or mem:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
        rows = [r for r in http if r["config"] == "1 worker, pinned"]
        if rows:
            left.plot([r["rules"] for r in rows], [max(r["rss_kib"].values()) / 1024 for r in rows], "o-")
            left.set_xscale("log")
            left.set_xlabel("rules (R)")
            left.set_ylabel("worker RSS, MiB")
            left.set_title("RSS per worker after its runs")
            left.grid(True, alpha=0.3)
        if mem.get("http"):
            samples = mem["http"]["samples"]
            base = samples[0][2]
            right.plot([s[1] for s in samples], [(s[2] - base) / 1024 for s in samples],
                       label=f"HTTP worker, R = {mem['http']['rules']:,} (start {base / 1024:.0f} MiB)")
        if mem.get("engineLoop"):
            pts = mem["engineLoop"]["rss_kib"]
            base = pts[0][1]
            right.plot([p[0] for p in pts], [(p[1] - base) / 1024 for p in pts],
                       label=f"in-process engine loop, R = {mem['engineLoop']['rules']:,}")
        right.axhline(0, color="grey", lw=0.8)
        right.set_ylim(-5, 25)
        right.set_xlabel("requests / evaluations")
        right.set_ylabel("RSS growth since the start, MiB")
        right.set_title("Memory over the run")
        right.legend(fontsize=7)
        right.grid(True, alpha=0.3)
        written.append(_save(plt, fig, out / "memory.png"))
    store = results.get("store", [])
    if store:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for api, marker in (("TMF629 create", "o"), ("TMF680 async create", "s")):
            rows = sorted((r for r in store if r["api"] == api), key=lambda r: r["stored"])
            if rows:
                ax.plot([r["stored"] for r in rows], [r["p50_ms"] for r in rows], marker + "-", label=f"{api} p50")
        written.append(_save_log_log(plt, fig, ax, out / "store.png", "records already stored in the collection", "create latency p50, ms (log)", "Store writes against stored records", 8))
    return written


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results["goals"] = evaluate_goals(results)
    results["plots"] = plots(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(results) + "\n", encoding="utf-8")


def _save(plt, fig, path) -> str:
    """Writes one figure and frees it; the file name goes into the results."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _save_log_log(plt, fig, ax, path, xlabel: str, ylabel: str, title: str, fontsize: int) -> str:
    """The figures against rule count or record count share log-log axes."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=fontsize)
    ax.grid(True, which="both", alpha=0.3)
    return _save(plt, fig, path)


def http_compare_plot(result: dict, path: Path) -> str | None:
    """bench/http_compare.py's medians as two bar charts side by side: the
    req/s ratio to bare Flask and the worker CPU per request (instant beside
    bare), one bar group per (rule set, decision log), base beside this
    tree. None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    medians = result["median"]
    groups = sorted({key.split(" ", 1)[1] for key in medians})
    sides = [side for side in ("base", "new") if any(k.startswith(side + " ") for k in medians)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    width = 0.8 / max(1, len(sides))
    for i, side in enumerate(sides):
        xs = [g + i * width for g in range(len(groups))]
        label = result.get("base") if side == "base" else "this tree"
        ratios = [medians.get(f"{side} {g}", {}).get("ratio", 0) for g in groups]
        cpu = [medians.get(f"{side} {g}", {}).get("instant_cpu_us", 0) / 1000 for g in groups]
        left.bar(xs, ratios, width, label=label)
        right.bar(xs, cpu, width, label=f"{label}: instant")
    bare = [statistics_median([medians[k]["bare_cpu_us"] for k in medians if k.endswith(" " + g)]) / 1000
            for g in groups]
    right.plot([g + width * (len(sides) - 1) / 2 for g in range(len(groups))], bare, "k_", markersize=30,
               mew=2, label="bare Flask")
    for ax in (left, right):
        ax.set_xticks([g + width * (len(sides) - 1) / 2 for g in range(len(groups))])
        ax.set_xticklabels([g.replace(" log=", "\nlog ") for g in groups], fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    for goal in (0.5, 0.6):
        left.axhline(goal, color="grey", linestyle="--", linewidth=0.8)
    left.set_ylabel("instant req/s / bare req/s")
    left.set_title("Instant POST against bare Flask (goals 0.5 / 0.6)")
    right.set_ylabel("worker CPU ms per request")
    right.set_title("CPU per request, one pinned worker")
    return _save(plt, fig, path)


def statistics_median(values: list[float]) -> float:
    import statistics
    return statistics.median(values) if values else 0.0
