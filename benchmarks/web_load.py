"""Load test of ``semsearch serve``'s search API on the loopback address; stops by itself.

A server process serves a database of N random unit vectors (default 5,000, 50-d) with a
GloVe ``TextEmbedder`` (the packaged GloVe-50, IDF fitted on a few built-in captions), on
127.0.0.1 only. C client threads (default 16, one keep-alive connection each) send R
``GET /api/search?q=...&k=9`` requests in all (default 2,000), each answered with the top 9
and every word's share of every score. Prints requests/s, p50 / p99 latency and the number
of errors, and, as the reference timed in the same run, the same searches called in-process
(``database.query`` + ``explain``, no HTTP).

It stops after R requests, or after --deadline seconds (default 300), whichever comes first.

    python benchmarks/web_load.py                      # 2,000 requests, 16 clients, 5,000 images
    python benchmarks/web_load.py --requests 500 --clients 4
"""
from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAPTIONS = [
    "a dog catching a frisbee on the beach", "people skiing down a snowy hill", "a cat sleeping on a sofa",
    "a red bus driving down a city street", "a kitchen with a stove and a sink", "a man riding a horse in a field",
    "two giraffes standing near a tree", "a plate of food with broccoli and rice", "a baseball player swinging a bat",
    "a train pulling into a station", "a woman holding an umbrella in the rain", "boats in a harbor at sunset",
]
QUERIES = [
    "a dog on the beach", "skiing on a snowy hill", "a cat on a sofa", "a red bus in the street",
    "a kitchen stove", "a horse in a field", "giraffes near a tree", "food with broccoli",
    "a baseball player", "a train station", "an umbrella in the rain", "boats at sunset",
]


def build(n_images: int, seed: int = 0):
    from semsearch.database import ImageDatabase
    from semsearch.text import TextEmbedder

    text_encoder = TextEmbedder.fit(CAPTIONS)
    vectors = np.random.default_rng(seed).normal(size=(n_images, text_encoder.dim))
    return ImageDatabase(np.arange(n_images) + 1, vectors, text_encoder), text_encoder


def serve(port: int, n_images: int) -> None:
    import uvicorn

    from semsearch.web.app import create_app

    database, text_encoder = build(n_images)
    uvicorn.run(create_app(database, text_encoder), host="127.0.0.1", port=port, log_level="error")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not start in time")


def load(base: str, n_requests: int, n_clients: int, k: int, deadline: float):
    import httpx

    latencies, errors, lock = [], [], threading.Lock()
    counter = iter(range(n_requests))

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    response = http.get("/api/search", params={"q": QUERIES[i % len(QUERIES)], "k": k})
                    ok = response.status_code == 200 and len(response.json()["results"]) == k
                except httpx.HTTPError as e:
                    ok, response = False, e
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(repr(response))

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, np.array(latencies), errors


def in_process(n_images: int, n_requests: int, k: int) -> float:
    """Seconds per search called directly: the reference, no HTTP."""
    from semsearch.routes.explain import explain

    database, text_encoder = build(n_images)
    start = time.perf_counter()
    for i in range(n_requests):
        q = QUERIES[i % len(QUERIES)]
        ids, _ = database.query(q, k)
        for image_id in ids:
            explain(text_encoder, q, database.vector_of(image_id))
    return (time.perf_counter() - start) / n_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("-k", type=int, default=9)
    parser.add_argument("--deadline", type=float, default=300.0, help="stop after this many seconds in any case")
    args = parser.parse_args()

    stop_at = time.monotonic() + args.deadline
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, args.images), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, min(stop_at, time.monotonic() + 60))
        seconds, latencies, errors = load(base, args.requests, args.clients, args.k, stop_at)
    finally:
        server.terminate()
        server.join(10)
    reference = in_process(args.images, min(args.requests, 500), args.k)
    done = len(latencies)
    print(f"{done} of {args.requests} search requests, {args.clients} concurrent clients, {args.images:,} images, k={args.k}")
    print(f"  throughput   {done / seconds:8.1f} requests/s   ({seconds:.1f} s)")
    print(f"  latency p50  {1e3 * np.percentile(latencies, 50):8.1f} ms")
    print(f"  latency p99  {1e3 * np.percentile(latencies, 99):8.1f} ms")
    print(f"  errors       {len(errors):8d}" + (f"   first: {errors[0]}" if errors else ""))
    print(f"  reference    {1e3 * reference:8.2f} ms per search + word shares in-process, no HTTP ({1 / reference:.0f}/s)")
    print(f"  ratio        {done / seconds * reference:8.2f}x the in-process rate, served over HTTP on loopback")
    if done < args.requests:
        print(f"  stopped at the {args.deadline:.0f} s deadline")


if __name__ == "__main__":
    main()
