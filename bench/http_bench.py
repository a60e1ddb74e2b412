"""Over HTTP: the instant TMF680 POST against the bare Flask endpoint, worker memory,
and hot reload under load."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from app.store import open_store

from .engine_bench import pct
from .load import run_load
from .server import Server, service_env, smaps_rollup_kib
from .workload import RULESET_ID, Workload, make_rules, rules_yaml

RECO_PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
CONFIGS = {
    # name: (workers, server cpus, client cpus, connections)
    "1 worker, pinned": (1, "0", "1", 4),
    "2 workers": (2, None, None, 8),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> float:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return -1.0


def populate(data_dir: Path, collections: dict[str, list[dict]]) -> None:
    """Write documents through the project's store (one durable write per collection)."""
    store = open_store(str(data_dir))
    try:
        for name, docs in collections.items():
            with store.transaction(name) as tx:
                for doc in docs:
                    tx.insert(doc)
    finally:
        store.close()


def parties_store(workload: Workload) -> Path:
    """A data directory holding the workload's customers and products (a template
    copied for every server, so each starts from the same state)."""
    template = workload.root / "data-template"
    if not template.exists():
        populate(template, {"customer": workload.parties.customers, "product": workload.parties.products})
    return template


def fresh_data(workload: Workload, name: str) -> Path:
    target = workload.root / "runs" / name
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(parties_store(workload), target)
    return target


def body_files(workload: Workload) -> dict[str, Path]:
    """mix: the generated bodies; anonymous: the same without relatedParty."""
    files = {"mix": workload.bodies_path()}
    anonymous = workload.root / "bodies-anonymous.jsonl"
    if not anonymous.exists():
        with open(anonymous, "w", encoding="utf-8") as handle:
            for body in workload.bodies:
                body = {k: v for k, v in body.items() if k != "relatedParty"}
                handle.write(json.dumps(body, separators=(",", ":")) + "\n")
    files["anonymous"] = anonymous
    return files


def reco_server(workload: Workload, n_rules: int, workers: int, cpus: str | None, name: str,
                rules_dir: Path | None = None, data_dir: Path | None = None, root: Path | None = None,
                extra_env: dict | None = None) -> Server:
    """The service on the workload; `root` is the tree served (default: this one);
    `extra_env` e.g. {"RECO_DECISION_LOG": "0"}."""
    data = data_dir or fresh_data(workload, name)
    env = service_env(data, rules_dir or workload.rules_dir(n_rules), workload.catalog_dir,
                      getattr(workload, "ruleset_id", RULESET_ID))
    env.update(extra_env or {})
    return Server("wsgi:app", workload.root, workers=workers, cpus=cpus, env=env, name=name,
                  **({"root": root} if root else {})).start(timeout=600)


def measured(server: Server, url: str, bodies: Path, *, client: str, connections: int, cpus: str | None,
             duration: float, warmup: float, offset: int = 0) -> dict:
    """Warm up, then measure; adds the server-side figures from the access log."""
    if warmup:
        run_load(url, bodies, client=client, connections=connections, duration=warmup, cpus=cpus, offset=offset)
    start = server.log_offset()
    load_before = loadavg()
    result = run_load(url, bodies, client=client, connections=connections, duration=duration, cpus=cpus,
                      offset=offset)
    time.sleep(0.2)
    entries = [e for e in server.access_entries(start) if e[3] == "POST"]
    micros = [e[2] for e in entries]
    result["server"] = {
        "requests": len(entries),
        "p50_ms": round(pct(micros, 50) / 1000, 3), "p99_ms": round(pct(micros, 99) / 1000, 3),
        "non200": sum(1 for e in entries if e[1] != 200),
        "perWorker": {str(pid): sum(1 for e in entries if e[0] == pid) for pid in {e[0] for e in entries}},
    }
    result["loadavg"] = [load_before, loadavg()]
    return result


def http_matrix(workload: Workload, rule_counts: list[int], *, client: str, duration: float, warmup: float,
                configs: list[str]) -> list[dict]:
    bodies = body_files(workload)
    rows = []
    for config in configs:
        workers, server_cpus, client_cpus, connections = CONFIGS[config]
        bare = Server("bench.bare_app:app", workload.root, workers=workers, cpus=server_cpus,
                      name=f"bare-{workers}w").start()
        try:
            for n_rules in rule_counts:
                log(f"HTTP {config}: R={n_rules}: starting the service")
                server = reco_server(workload, n_rules, workers, server_cpus, f"reco-{workers}w-{n_rules}")
                try:
                    row = {"config": config, "workers": workers, "connections": connections, "rules": n_rules,
                           "serverReady_s": round(server.ready_seconds, 2)}
                    row["bare"] = measured(bare, bare.url + "/bare", bodies["mix"], client=client,
                                           connections=connections, cpus=client_cpus, duration=duration,
                                           warmup=warmup)
                    row["instant"] = measured(server, server.url + RECO_PATH, bodies["mix"], client=client,
                                              connections=connections, cpus=client_cpus, duration=duration,
                                              warmup=warmup)
                    if workers == 1:
                        row["instantAnonymous"] = measured(
                            server, server.url + RECO_PATH, bodies["anonymous"], client=client,
                            connections=connections, cpus=client_cpus, duration=duration, warmup=warmup / 2)
                    row["rss_kib"] = server.worker_rss_kib()
                    row["bareRss_kib"] = bare.worker_rss_kib()
                    row["ratio_rps"] = round(row["instant"]["rps"] / row["bare"]["rps"], 4) if row["bare"]["rps"] else None
                    rows.append(row)
                    log(f"  bare {row['bare']['rps']} req/s p99 {row['bare']['p99_ms']} ms | instant "
                        f"{row['instant']['rps']} req/s p50 {row['instant']['p50_ms']} p99 {row['instant']['p99_ms']} ms"
                        f" (server p99 {row['instant']['server']['p99_ms']} ms) | ratio {row['ratio_rps']}"
                        f" | rss {sorted(v // 1024 for v in row['rss_kib'].values())} MiB")
                finally:
                    server.stop()
        finally:
            bare.stop()
    return rows


def memory_growth(workload: Workload, n_rules: int, *, client: str, requests: int, max_seconds: float,
                  warmup: float, extra_env: dict | None = None, root: Path | None = None) -> dict:
    """RSS of one pinned worker, sampled every second, while it answers `requests`
    instant POSTs (or for max_seconds, whichever comes first); the worker's and
    its master's /proc smaps_rollup before and after the run (how much of the
    worker's RSS is pages still shared with the master). `extra_env` and `root`
    as for reco_server."""
    workers, server_cpus, client_cpus, connections = CONFIGS["1 worker, pinned"]
    server = reco_server(workload, n_rules, 1, server_cpus, f"memory-{n_rules}", extra_env=extra_env, root=root)
    bodies = body_files(workload)["mix"]
    try:
        url = server.url + RECO_PATH
        pid = server.worker_pids()[0]
        smaps = {"workerReady": smaps_rollup_kib(pid), "master": smaps_rollup_kib(server.process.pid)}
        run_load(url, bodies, client=client, connections=connections, duration=warmup, cpus=client_cpus)
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        offset = server.log_offset()
        counted = [0, offset]

        def sample() -> None:
            t0 = time.perf_counter()
            while not stop.is_set():
                end = server.log_offset()
                with open(server.log_path, "rb") as handle:
                    handle.seek(counted[1])
                    counted[0] += handle.read(end - counted[1]).count(b"BENCH <")
                counted[1] = end
                samples.append((round(time.perf_counter() - t0, 2), counted[0],
                                server.worker_rss_kib().get(pid, 0)))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run_load(url, bodies, client=client, connections=connections, duration=max_seconds,
                          count=requests, cpus=client_cpus)
        stop.set()
        sampler.join()
        rss_end = server.worker_rss_kib().get(pid, 0)
        smaps["workerEnd"] = smaps_rollup_kib(pid)
        samples.append((samples[-1][0] if samples else 0, result["requests"], rss_end))
        start_rss = samples[0][2]
        # growth after the first tenth of the run (caches filled), to the end
        tenth = next((s for s in samples if s[1] >= result["requests"] / 10), samples[0])
        return {"rules": n_rules, "target": requests, "requests": result["requests"], "seconds": result["seconds"],
                "rps": result["rps"], "errors": result["errors"], "rssStart_kib": start_rss,
                "rssAfterTenth_kib": tenth[2], "rssEnd_kib": rss_end,
                "growth_kib": rss_end - start_rss, "growthAfterTenth_kib": rss_end - tenth[2],
                "reachedTarget": result["requests"] >= requests, "smaps_kib": smaps, "samples": samples}
    finally:
        server.stop()


def reload_under_load(workload: Workload, n_rules: int, *, total: float, before: float) -> dict:
    """One pinned worker serves R rules under load (python client: it records every
    request); after `before` seconds the rule file is replaced by version 1.1.0 with
    R different rules. Reports when the new version answers and what happened meanwhile."""
    workers, server_cpus, client_cpus, connections = CONFIGS["1 worker, pinned"]
    rules_dir = workload.root / f"reload-{n_rules}"
    if rules_dir.exists():
        shutil.rmtree(rules_dir)
    rules_dir.mkdir(parents=True)
    shutil.copy(workload.ruleset_path(n_rules), rules_dir / f"{RULESET_ID}.yaml")
    new_text = rules_yaml(make_rules(workload.catalog, n_rules, workload.seed + 1000, version="1.1.0"))
    server = reco_server(workload, n_rules, 1, server_cpus, f"reload-{n_rules}", rules_dir=rules_dir)
    bodies = body_files(workload)["mix"]
    timeline = workload.root / f"reload-{n_rules}-timeline.jsonl"
    try:
        url = server.url + RECO_PATH
        run_load(url, bodies, client="python", connections=connections, duration=2, cpus=client_cpus)
        outcome: dict = {"rssBefore_kib": sum(server.worker_rss_kib().values())}

        def swap() -> None:
            time.sleep(before)
            staged = rules_dir / f".{RULESET_ID}.yaml.new"
            staged.write_text(new_text, encoding="utf-8")
            outcome["swapEpoch"] = time.time()
            os.replace(staged, rules_dir / f"{RULESET_ID}.yaml")     # atomic, as an operator's deploy would

        swapper = threading.Thread(target=swap, daemon=True)
        swapper.start()
        result = run_load(url, bodies, client="python", connections=connections, duration=total,
                          cpus=client_cpus, timeline=timeline, header="X-Ruleset")
        swapper.join()
        outcome["rssAfter_kib"] = sum(server.worker_rss_kib().values())
    finally:
        server.stop()
    records = [json.loads(line) for line in open(timeline, encoding="utf-8")]
    swap_at = outcome["swapEpoch"] - result["epoch"]
    old, new = f"{RULESET_ID}@1.0.0", f"{RULESET_ID}@1.1.0"
    before_lat = [r[1] for r in records if r[0] + r[1] < swap_at]
    first_new = min((r[0] + r[1] for r in records if r[3] == new), default=None)
    last_old = max((r[0] + r[1] for r in records if r[3] == old), default=None)
    activation = (first_new - swap_at) if first_new is not None else None
    window_end = max(first_new or swap_at, last_old or swap_at) + 0.5
    during = [r for r in records if r[0] + r[1] >= swap_at and r[0] <= window_end]
    baseline_p99 = pct(before_lat, 99)
    threshold = max(2 * baseline_p99, 0.05)
    return {
        "rules": n_rules, "requests": len(records),
        "activation_s": round(activation, 3) if activation is not None else None,
        "allNewAfter_s": round(last_old - swap_at, 3) if last_old is not None and first_new is not None else None,
        "failed": sum(1 for r in records if r[2] != 200),
        "failedDuringReload": sum(1 for r in during if r[2] != 200),
        "duringReload": len(during),
        "baselineP50_ms": round(pct(before_lat, 50) * 1000, 2), "baselineP99_ms": round(baseline_p99 * 1000, 2),
        "slowThreshold_ms": round(threshold * 1000, 1),
        "slowedDuringReload": sum(1 for r in during if r[1] > threshold),
        "maxDuringReload_ms": round(max((r[1] for r in during), default=0) * 1000, 1),
        "newVersionServed": first_new is not None,
        "rssBefore_kib": outcome["rssBefore_kib"], "rssAfter_kib": outcome.get("rssAfter_kib"),
    }
