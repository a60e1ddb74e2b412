"""A small closed-loop HTTP load client (the fallback when wrk is missing, and the
client of the reload and store runs, which need every request's outcome).

    python -m bench.pyclient URL --bodies FILE.jsonl [--concurrency 4] [--duration S] [--count N]
                             [--timeline OUT.jsonl] [--header X-Ruleset]

Each of `concurrency` threads keeps one HTTP/1.1 keep-alive connection and POSTs the
bodies in turn. Prints one JSON line `BENCH_JSON {...}` with the same keys as the wrk
script. With --timeline, writes one line per request: start (s from the run's start),
latency (s), status, and the value of --header in the response.
"""
from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def keepalive_post(conn, host: str, port: int, path: str, body: bytes, timeout: float,
                   header: str | None = None) -> tuple:
    """One JSON POST on a keep-alive connection, opened when `conn` is None and
    dropped after an error or a "Connection: close" answer:
    (connection to reuse or None, status or 0 on a transport error, value of `header`, body bytes)."""
    status, value, size = 0, None, 0
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        size = len(response.read())
        status = response.status
        if header:
            value = response.getheader(header)
        if (response.getheader("Connection") or "").lower() == "close":
            conn.close()
            conn = None
    except (OSError, http.client.HTTPException):
        if conn is not None:
            conn.close()
        conn = None
    return conn, status, value, size


def run(url: str, bodies: list[bytes], concurrency: int, duration: float | None, count: int | None,
        header: str | None = None, timeout: float = 180.0) -> tuple[dict, list[tuple]]:
    parts = urlsplit(url)
    path = parts.path or "/"
    lock = threading.Lock()
    records: list[tuple] = []
    state = {"next": 0, "errors_connect": 0, "errors_read": 0, "errors_status": 0, "bytes": 0}
    epoch = time.time()
    start = time.perf_counter()
    stop_at = start + duration if duration else None

    def take() -> int | None:
        with lock:
            if count is not None and state["next"] >= count:
                return None
            state["next"] += 1
            return state["next"] - 1

    def worker() -> None:
        conn = None
        while True:
            if stop_at is not None and time.perf_counter() >= stop_at:
                return
            number = take()
            if number is None:
                return
            body = bodies[number % len(bodies)]
            began = time.perf_counter()
            conn, status, value, size = keepalive_post(conn, parts.hostname, parts.port, path, body, timeout, header)
            ended = time.perf_counter()
            with lock:
                records.append((began - start, ended - began, status, value))
                state["bytes"] += size
                if status == 0:
                    state["errors_read"] += 1
                elif status >= 400:
                    state["errors_status"] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    latencies = sorted(r[1] * 1e6 for r in records)
    summary = {
        "epoch": epoch, "requests": len(records), "duration_us": int(elapsed * 1e6), "bytes": state["bytes"],
        "errors_connect": state["errors_connect"], "errors_read": state["errors_read"], "errors_write": 0,
        "errors_status": state["errors_status"], "errors_timeout": 0,
        "p50_us": percentile(latencies, 50), "p90_us": percentile(latencies, 90),
        "p99_us": percentile(latencies, 99), "p999_us": percentile(latencies, 99.9),
        "max_us": latencies[-1] if latencies else 0.0,
        "mean_us": sum(latencies) / len(latencies) if latencies else 0.0,
    }
    return summary, records


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--count", type=int)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--timeline")
    parser.add_argument("--header")
    args = parser.parse_args(argv)
    with open(args.bodies, "rb") as handle:
        bodies = [line.rstrip(b"\n") for line in handle if line.strip()]
    bodies = bodies[args.offset % len(bodies):] + bodies[:args.offset % len(bodies)]
    summary, records = run(args.url, bodies, args.concurrency, args.duration, args.count, args.header)
    if args.timeline:
        with open(args.timeline, "w", encoding="utf-8") as handle:
            for began, latency, status, value in records:
                handle.write(json.dumps([round(began, 6), round(latency, 6), status, value]) + "\n")
    print("BENCH_JSON " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
