#!/usr/bin/env python3
"""Console figures: the browser bundle's size, and how long the manager takes to render a page.

Prints the WASM bundle's size as served (raw and gzip -9; the manager serves the .gz file) and the
server-side render time of the clusters list for a signed-in root with 100 clusters: a real
manager on SQLite, requests in sequence over loopback, p50 / p90 / max over N renders after a
warm-up. Targets (issue 5): compressed WASM <= 600 KiB, SSR p50 <= 20 ms on this machine.

Usage: console/benches/console.py [--manager target/release/manager] [--site target/site]
                                  [--clusters 100] [--renders 200]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

KIB = 1024


def request(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.read()


def bundle(site):
    wasm = os.path.join(site, "pkg", "console_bg.wasm")
    raw = open(wasm, "rb").read()
    gz9 = len(gzip.compress(raw, compresslevel=9))
    # What browsers download: the precompressed file the manager serves (zopfli, see Makefile).
    served = os.path.getsize(wasm + ".gz") if os.path.exists(wasm + ".gz") else gz9
    print(f"WASM bundle: {len(raw) / KIB:.0f} KiB raw, {served / KIB:.0f} KiB served gzip "
          f"({gz9 / KIB:.0f} KiB with gzip -9) "
          f"(target <= 600 KiB compressed: {'met' if served <= 600 * KIB else 'NOT met'})")


def ssr(manager, site, clusters, renders):
    work = tempfile.mkdtemp(prefix="console-bench-")
    ready = os.path.join(work, "ready.json")
    env = dict(os.environ, DAMSELFLY_ROOT_PASSWORD="bench-root-password")
    log = open(os.path.join(work, "manager.log"), "w")
    proc = subprocess.Popen(
        [manager, "--data-dir", os.path.join(work, "data"), "--http-addr", "127.0.0.1:0",
         "--grpc-addr", "127.0.0.1:0", "--site-root", site, "--ready-file", ready],
        env=env, stdout=log, stderr=log)
    try:
        for _ in range(300):
            if os.path.exists(ready) and os.path.getsize(ready) > 0:
                break
            time.sleep(0.1)
        base = "http://" + json.load(open(ready))["http"]
        _, body = request("POST", f"{base}/api/v1/users/signin",
                          {"name": "root", "password": "bench-root-password"})
        token = json.loads(body)["token"]
        for i in range(clusters - 1):  # the default cluster is the 100th
            request("POST", f"{base}/api/v1/clusters", {
                "name": f"bench-{i:03}", "bio": "benchmark cluster",
                "scopes": {"idc": f"idc-{i % 7}", "location": "cn|hz", "cidrs": ["10.0.0.0/8"], "hostnames": []},
            }, token)
        page = urllib.request.Request(f"{base}/clusters")
        page.add_header("cookie", f"jwt={token}")
        times = []
        for i in range(renders + 20):
            start = time.perf_counter()
            with urllib.request.urlopen(page, timeout=30) as resp:
                html = resp.read()
                assert resp.status == 200 and b"clusters-table" in html, "the clusters list did not render"
            if i >= 20:  # warm-up: connections, caches
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p90 = times[int(len(times) * 0.9) - 1]
        print(f"SSR /clusters ({clusters} clusters, signed in, {renders} renders): "
              f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {times[-1]:.1f} ms, page {len(html) / KIB:.0f} KiB "
              f"(target p50 <= 20 ms: {'met' if p50 <= 20 else 'NOT met'})")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manager", default="target/release/manager")
    ap.add_argument("--site", default="target/site")
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--renders", type=int, default=200)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, manager {args.manager}")
    bundle(args.site)
    ssr(os.path.abspath(args.manager), os.path.abspath(args.site), args.clusters, args.renders)


if __name__ == "__main__":
    main()
