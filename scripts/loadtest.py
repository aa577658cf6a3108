#!/usr/bin/env python3
"""Load-test `newstopic serve` on loopback: N concurrent clients for T seconds.

Starts the server on a free port of 127.0.0.1 with the given model, gives each client its own
keep-alive connection, and has every client send one text per request, back to back. Reports
requests per second, latency percentiles, the error count and the server's resident memory.

    python scripts/loadtest.py --model models/lr --clients 32 --seconds 60 --preset all
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

SAMPLE_TEXTS = [
    "The rocket launch was delayed again after engineers found a fault in the fuel system.",
    "My new graphics card shows artifacts when the driver renders textures in 3D games.",
    "The doctor said the infection should clear up with a week of antibiotics.",
    "Our goalie stopped forty shots and the team won the playoff game in overtime.",
    "The car's engine stalls at idle; I already replaced the spark plugs and the filter.",
    "Encryption keys held in escrow by the government would weaken everyone's privacy.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", "-m", required=True, type=Path, help="A model directory.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent clients.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration of the run.")
    parser.add_argument("--endpoint", choices=["predict", "explain"], default="predict")
    parser.add_argument("--preset", help="Send 20 Newsgroups test messages of this preset "
                                         "(the archive from NEWSTOPIC_DATA) [default: short "
                                         "sample sentences]")
    parser.add_argument("--file", type=Path, help="Send these texts (one per line, or "
                                                  "CSV/TSV/JSONL with a text column).")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0:
        sys.exit("error: --clients must be at least 1 and --seconds positive")
    texts = load_texts(args)
    server, port = start_server(args.model)
    try:
        result = run(server.pid, port, texts, args)
    finally:
        server.terminate()
        server.wait(30)
    result.update(model=str(args.model), endpoint=args.endpoint, clients=args.clients,
                  seconds=args.seconds, texts=args.preset or (args.file and str(args.file))
                  or "sample sentences")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.endpoint}\t{args.model}\t{args.clients} clients\t{args.seconds:g} s\t"
              f"{result['requests_per_second']:.1f} requests/s\t"
              f"p50 {result['p50_ms']:.1f} ms\tp95 {result['p95_ms']:.1f} ms\t"
              f"p99 {result['p99_ms']:.1f} ms\t{result['errors']} errors\t"
              f"server RSS {result['rss_mb']:.0f} MB (peak {result['peak_rss_mb']:.0f} MB)")


def load_texts(args) -> list[str]:
    if args.file:
        from newstopic.data import read_texts

        texts = read_texts(args.file, "text")
    elif args.preset:
        from newstopic.data import load_20newsgroups

        texts = load_20newsgroups(preset=args.preset).test_texts[:1000]
    else:
        texts = SAMPLE_TEXTS
    return [t for t in texts if 0 < len(t) <= 100_000]  # within the server's default limit


def start_server(model: Path) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen([sys.executable, "-m", "newstopic", "serve", "--model", str(model),
                               "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()  # "serving NAME on http://127.0.0.1:PORT/", once loaded
    if not line.startswith("serving "):
        server.wait(30)
        sys.exit(f"error: the server did not start (exit {server.returncode})")
    return server, int(line.rstrip("/\n").rsplit(":", 1)[1])


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(server_pid: int, port: int, texts: list[str], args) -> dict:
    path = f"/{args.endpoint}"
    bodies = [json.dumps({"texts": [t]} if args.endpoint == "predict" else {"text": t}).encode()
              for t in texts]
    headers = {"Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors = [0] * args.clients
    start_line = threading.Barrier(args.clients + 1)
    stop = threading.Event()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start_line.wait()
        i = number
        while not stop.is_set():
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=bodies[i % len(bodies)], headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()  # reconnects on the next request
            if ok:
                latencies[number].append(time.perf_counter() - began)
            else:
                errors[number] += 1
            i += args.clients

    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(args.clients)]
    for thread in threads:
        thread.start()
    rss_before = rss_mb(server_pid)
    start_line.wait()
    began = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        time.sleep(min(0.5, args.seconds))
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - began
    done = np.array([t for client_latencies in latencies for t in client_latencies]) * 1000
    p50, p95, p99 = np.percentile(done, [50, 95, 99]) if done.size else (np.nan,) * 3
    return {"requests": int(done.size), "requests_per_second": done.size / elapsed,
            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "errors": int(sum(errors)), "rss_mb_before": rss_before,
            "rss_mb": rss_mb(server_pid), "peak_rss_mb": rss_mb(server_pid, "VmHWM")}


if __name__ == "__main__":
    main()
