#!/usr/bin/env python3
"""Distribution benchmark: one file of F MiB from one origin to N peers, by Damselfly, by N plain
curls (direct) and by BitTorrent (aria2), in one run, under the same per-host bandwidth caps.

The network (one namespace per host, tc tbf caps at the edges), the direct and BitTorrent runs
and the measuring helpers come from the shared baseline harness, ../shared/bench/baseline.py
beside the repository (python3 stdlib only); this script adds the Damselfly run and the report.

Damselfly run: nginx on the origin (cap u_s), the scheduler on an uncapped host, one seed
dfdaemon and N dfdaemons (each capped at u up, d down). The clock starts when the N `dfget`s
are launched (daemons up, announced and healthy) and stops when the last one exits 0, i.e. has
a complete file verified against the sha256 (`--digest`). The seed peer is not timed; it
counts in the bound as one more host that must receive the file and may upload:

    T_min = max(F/u_s, F/d, (N+1)·F/(u_s + (N+1)·u))

The same T_min is used for all three systems of a configuration so wall/T_min compares them
directly (the classic bound for N downloaders without a seed, N·F/(u_s+N·u), is shown too).
Must run as root.
"""
import argparse
import collections
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True
import benchkit as K  # noqa: E402
from benchkit import B, MiB, REPO, Net, grep, machine_cc, shrink, t_min  # noqa: E402,F401

ORIGIN_PORT = 8080
SYSTEMS = ("damselfly", "damselfly-plain", "direct", "bittorrent")


# --------------------------------------------------------------------------- damselfly
def start_origin(host, run_dir, src):
    """nginx serving src's directory on host:ORIGIN_PORT; returns (proc, dir, url)."""
    ndir = os.path.join(run_dir, "nginx")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(ndir, sub))
    conf = f"""
master_process off;
daemon off;
worker_processes 1;
pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  log_format bench '$remote_addr $status $body_bytes_sent $bytes_sent $request_time $msec "$request" "$http_range"';
  access_log {ndir}/access.log bench;
  client_body_temp_path {ndir}/client_body;
  proxy_temp_path {ndir}/proxy;
  fastcgi_temp_path {ndir}/fastcgi;
  uwsgi_temp_path {ndir}/uwsgi;
  scgi_temp_path {ndir}/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  server {{
    listen {host.addr}:{ORIGIN_PORT};
    root {os.path.dirname(src)};
  }}
}}
"""
    with open(os.path.join(ndir, "nginx.conf"), "w") as f:
        f.write(conf)
    p = B.spawn(host, ["nginx", "-p", ndir, "-e", ndir + "/error.log", "-c", ndir + "/nginx.conf"],
                os.path.join(ndir, "stdout.log"))
    B.wait_listen(host, ORIGIN_PORT)
    return p, ndir, "http://%s:%d/%s" % (host.addr, ORIGIN_PORT, os.path.basename(src))


def origin_log(ndir):
    """nginx access log -> {remote_addr: [requests, bytes_sent]}."""
    by = collections.defaultdict(lambda: [0, 0])
    path = os.path.join(ndir, "access.log")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[3].isdigit():
                    by[parts[0]][0] += 1
                    by[parts[0]][1] += int(parts[3])
    return dict(by)


def origin_request_time(ndir, addr):
    """Seconds from the start of addr's first request to the end of its last one: the seed's whole
    back-to-source fetch, whether one GET or many range requests."""
    first, last = None, None
    path = os.path.join(ndir, "access.log")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[0] == addr:
                    try:
                        took, end = float(parts[4]), float(parts[5])
                    except ValueError:
                        continue
                    first = min(first if first is not None else end - took, end - took)
                    last = max(last or 0.0, end)
    return None if first is None else last - first


def run_damselfly(a, run_dir, src, digest, tag, tls=True):
    """Damselfly, with mutual TLS on every hop and on the piece transport (tls), or in plain text."""
    N = a.N
    bindir = a.bin_dir
    net = Net(a, N + 1, tag)                 # peers[0] is the seed peer, peers[1..N] download
    cpu0 = B.children_cpu()
    env = dict(os.environ, RUST_LOG=a.rust_log, NO_COLOR="1")
    res = {}
    try:
        o, sch = net.origin, net.tracker     # the scheduler lives on the (uncapped) tracker host
        nginx, ndir, url = start_origin(o, run_dir, src)

        ca_dir = os.path.join(run_dir, "ca")
        sched, sdir = K.start_scheduler(a, run_dir, sch, ca_dir, tls=tls, env=env)
        daemons, names, socks = K.start_dfdaemons(a, run_dir, net, ca_dir, tls=tls, env=env)

        tx0 = net.tx_bytes(o)
        meter = B.CpuMeter()
        t0 = time.monotonic()
        outs, procs = [], []
        for h, name, sock in zip(net.peers[1:], names[1:], socks[1:]):
            out = os.path.join(run_dir, name, "out", os.path.basename(src))
            outs.append(out)
            argv = [os.path.join(bindir, "dfget"), url, "-O", out, "-e", sock, "--no-progress"]
            if not a.df_no_digest:
                argv += ["--digest", "sha256:" + digest]
            if a.df_piece_kib:
                argv += ["--piece-length", str(a.df_piece_kib * 1024)]
            procs.append(B.spawn(h, argv, os.path.join(run_dir, name, "dfget.log"), env=env))
        spawn_s = time.monotonic() - t0

        def chk(pr, name):
            def f():
                rc = pr.poll()
                if rc is None:
                    return None
                if rc != 0:
                    raise B.BenchError("dfget on %s exited %s (see %s/%s/dfget.log)" % (name, rc, run_dir, name))
                return time.monotonic()
            return f
        smp = B.NetSampler(net, nginx, daemons, t0)    # daemons: seed + N peers, all capped at u
        fin = B.wait_all([chk(pr, n) for pr, n in zip(procs, names[1:])], "dfget", meter, sampler=smp)
        wall = max(fin) - t0
        cpu = meter.result()
        a1 = argparse.Namespace(**vars(a))
        a1.N = N + 1
        cpu.update(smp.summary(a1, wall))
        tx1 = net.tx_bytes(o)
        drops = net.qdisc_drops(o)
        seed_drops = net.qdisc_drops(net.peers[0])
        # bytes each daemon's host sent during the run (seed first), from the sampler
        up_by_host, up_timeline = {}, []
        if smp.on and len(smp.series) > 1:
            end = smp.series[-1][1]
            up_by_host = {n: end[i + 1][1] - smp.first[i + 1][1] for i, n in enumerate(names)}
            up_timeline = K.per_host_timeline(smp.series)
        B.stop_procs(daemons, grace=10.0)          # before the scheduler, so they can leave it
        B.stop_procs([sched])
        B.stop_procs([nginx])
        by_addr, seed_get_s = origin_log(ndir), origin_request_time(ndir, net.peers[0].addr)
        bad = B.verify(outs, digest)
        addr_name = {h.addr: n for h, n in zip(net.peers, names)}
        addr_name[sch.addr] = "scheduler"
        origin_by = {addr_name.get(k, k): v for k, v in sorted(by_addr.items())}
        # misbehaviour worth flagging: normal peers sent to the origin, warnings in the logs
        b2s = grep(os.path.join(sdir, "scheduler.log"), r"goes back to source")
        b2s_peers = [l for l in b2s if "seed peer fetches" not in l]
        warns = {n: len(grep(os.path.join(run_dir, n, "dfdaemon.log"), r"\b(WARN|ERROR)\b")) for n in names}
        res = dict(mode="damselfly", wall=wall,
                   origin_app_bytes=sum(v[1] for v in by_addr.values()),
                   origin_wire_bytes=(tx1 - tx0) if tx0 is not None else None,
                   origin_by_host=origin_by, back_to_source_nonseed=len(b2s_peers),
                   daemon_warnings={k: v for k, v in warns.items() if v},
                   sched_warnings=len(grep(os.path.join(sdir, "scheduler.log"), r"\b(WARN|ERROR)\b")),
                   per_peer=[round(x - t0, 3) for x in fin], origin_qdisc_drops=drops,
                   seed_qdisc_drops=seed_drops, up_by_host=up_by_host, up_timeline=up_timeline, seed_origin_get_s=seed_get_s,
                   spawn_s=round(spawn_s, 3), bad=bad, n_copies=len(outs), **cpu)
    finally:
        B.stop_procs([p for p in B.PROCS if p.poll() is None])
        res_cpu = B.children_cpu() - cpu0
        net.teardown()
    res["proc_cpu_s"] = round(res_cpu, 2)
    return res


# --------------------------------------------------------------------------- report
def fmt_row(system, r, F, tmin):
    if r.get("error"):
        return "%-11s FAILED: %s" % (system, r["error"])
    ob, ow = r.get("origin_app_bytes"), r.get("origin_wire_bytes")
    n = r.get("n_copies") or len(r.get("per_peer") or [])
    sha = "OK %d/%d" % (n - len(r["bad"]), n) if not r["bad"] else "BAD %d/%d" % (len(r["bad"]), n)
    return "%-11s %8.2f %8.2f %10.2f %14s %13s %9s %9.0f%%" % (
        system, r["wall"], tmin, r["wall"] / tmin,
        "%.3f" % (ob / (F * MiB)) if ob is not None else "n/a",
        "%.3f" % (ow / (F * MiB)) if ow is not None else "n/a", sha, r.get("bench_cpu_pct", 0))


HEADER = "%-11s %8s %8s %10s %14s %13s %9s %10s" % (
    "system", "wall_s", "T_min_s", "wall/T_min", "origin_bytes/F", "origin_wire/F", "sha256", "bench_cpu")


def report(a, rows):
    tmin = t_min(a.F, a.N, a.us, a.u, a.d)
    kr = B.kumar_ross(a.F, a.N, a.us, a.u, a.d)
    print()
    print("== F=%d MiB  N=%d  u_s=%g MiB/s  u=%g MiB/s  d=%s  tcp=%s   T_min=max(F/u_s, F/d, (N+1)F/(u_s+(N+1)u))=%.2f s"
          "  (KR without seed, N·F/(u_s+N·u): %.2f s)" % (a.F, a.N, a.us, a.u, "%g" % a.d if a.d else "inf",
                                                      a.tcp_cc or machine_cc(), tmin, kr))
    print(HEADER)
    for system, r in rows:
        print(fmt_row(system, r, a.F, tmin))
    for system, r in rows:
        if r.get("error"):
            continue
        extra = "  %s: peers done at %s s" % (system, ", ".join("%.2f" % x for x in sorted(r["per_peer"])))
        if r.get("origin_up_util") is not None:
            extra += "; origin_util=%.2f up_util=%.2f t_1MiB_median=%ss" % (
                r["origin_up_util"], r["total_up_util"], r["t_first_MiB_median"])
        print(extra)
        if system.startswith("damselfly"):
            print("  damselfly: origin bytes/F by host %s; normal peers sent back to source: %d; "
                  "WARN/ERROR lines: scheduler %d, daemons %s" % (
                      ", ".join("%s=%.3f (%d req)" % (k, v[1] / (a.F * MiB), v[0]) for k, v in r["origin_by_host"].items()),
                      r["back_to_source_nonseed"], r["sched_warnings"], r["daemon_warnings"] or "none"))
            if r.get("up_by_host"):
                print("  damselfly: upload by host /F (wire): %s" % ", ".join(
                    "%s=%.2f" % (k, v / (a.F * MiB)) for k, v in r["up_by_host"].items()))
            if a.verbose and r.get("up_timeline"):
                print("  damselfly: upload MiB/s per host over time [t, origin, seed, peer1..]:")
                for row in r["up_timeline"]:
                    print("    " + " ".join("%6s" % x for x in row))
            if r.get("seed_origin_get_s"):
                print("  damselfly: seed's fetch from the origin took %.2f s (%.1f MiB/s; F/u_s = %.2f s); "
                      "tbf drops on seed uplink %s, on origin uplink %s" % (
                          r["seed_origin_get_s"], a.F / r["seed_origin_get_s"], a.F / a.us,
                          r["seed_qdisc_drops"], r["origin_qdisc_drops"]))
    sys.stdout.flush()


def main():
    env = os.environ
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-F", type=int, default=int(env.get("F", 256)), help="file size MiB (default 256)")
    ap.add_argument("-N", default=env.get("N", "8,16"), help="peers; comma list = one configuration each (default 8,16)")
    ap.add_argument("--us", type=float, default=float(env.get("U_S", 40)), help="origin upload MiB/s (default 40)")
    ap.add_argument("--u", type=float, default=float(env.get("U", 20)), help="peer upload MiB/s (default 20)")
    ap.add_argument("--d", default=env.get("D", "unlimited"), help="peer download MiB/s (default unlimited)")
    ap.add_argument("--systems", default="damselfly,damselfly-plain,direct,bittorrent",
                    help="comma list of %s (damselfly: mutual TLS; damselfly-plain: plain text)" % ",".join(SYSTEMS))
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"),
                    help="where scheduler, dfdaemon, dfget are (default target/release)")
    ap.add_argument("--df-concurrency", type=int, default=16, help="dfdaemon [download] concurrency (default 16)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between daemons healthy and the clock (default 2)")
    ap.add_argument("--rust-log", default=env.get("RUST_LOG", "info"), help="RUST_LOG for the daemons (default info)")
    ap.add_argument("--tcp-cc", default=None,
                    help="TCP congestion control in every namespace, e.g. reno (default: the machine's)")
    ap.add_argument("--df-upload-concurrency", type=int, default=0,
                    help="dfdaemon [upload] concurrency (default: the dfdaemon's own)")
    ap.add_argument("--df-piece-kib", type=int, default=0,
                    help="dfget --piece-length in KiB (default: dfget's choice from the content length)")
    ap.add_argument("--df-no-digest", action="store_true",
                    help="dfget without --digest: files verified piece by piece only (BLAKE3), like BitTorrent's")
    ap.add_argument("--piece-kib", type=int, default=256, help="BitTorrent piece size KiB (default 256)")
    K.add_run_args(ap)
    args = ap.parse_args()
    args.d = B.parse_d(args.d)
    ns = [int(x) for x in str(args.N).split(",") if x.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            ap.error("unknown system %s" % s)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, tc)")
    need = {"damselfly": ["nginx", "curl"], "damselfly-plain": ["nginx", "curl"], "direct": ["nginx", "curl"],
            "bittorrent": ["aria2c", "mktorrent", "opentracker", "curl"]}
    for s in systems:
        for b in need[s] + ["ip", "tc", "ss", "setpriv"]:
            if not shutil.which(b):
                ap.error("missing %s (apt-get install -y nginx-light aria2 mktorrent opentracker curl iproute2 util-linux)" % b)
    if any(s.startswith("damselfly") for s in systems):
        for b in ("scheduler", "dfdaemon", "dfget", "damselfly"):
            if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
                ap.error("missing %s/%s (cargo build --release --bins)" % (args.bin_dir, b))

    K.harness_args(args)                      # the baseline runners build their networks with our Net
    K.on_signals_exit()

    B.cleanup_stale_netns()
    F = args.F
    need_bytes = F * MiB * (2 * max(ns) + 4) + 256 * MiB     # origin + seed + N (cache + output)
    work = K.make_workdir(need_bytes, args.workdir)
    runners = {"damselfly": run_damselfly, "direct": B.run_direct, "bittorrent": B.run_bittorrent,
               "damselfly-plain": lambda *x: run_damselfly(*x, tls=False)}
    rc = 0
    try:
        odir = os.path.join(work, "origin")
        os.makedirs(odir)
        os.chmod(odir, 0o755)
        src = os.path.join(odir, "payload.bin")
        B.info("creating %d MiB file in %s" % (F, work))
        B.make_file(src, F)
        os.chmod(src, 0o644)
        digest = B.sha256_file(src)
        B.info("sha256 %s" % digest)
        for ci, n in enumerate(ns):
            a = argparse.Namespace(**vars(args))
            a.N = n
            tmin = t_min(F, n, a.us, a.u, a.d)
            rows = []
            for s in systems:
                run_dir = os.path.join(work, "N%d.%s" % (n, s))
                os.makedirs(run_dir)
                os.chmod(run_dir, 0o755)
                B.info("run %s F=%d N=%d" % (s, F, n))
                try:
                    r = runners[s](a, run_dir, src, digest, "r%d%s" % (ci, "dp" if s == "damselfly-plain" else s[:2]))
                except B.Timeout:
                    raise
                except B.BenchError as e:
                    B.info("ERROR in %s: %s (logs in %s)" % (s, e, run_dir))
                    rows.append((s, {"error": str(e)}))
                    rc = rc or 2
                    shrink(run_dir, True)
                    continue
                r.update(system=s, F=F, N=n, U_S=a.us, U=a.u, D=a.d, T_min=tmin, wall_over_tmin=r["wall"] / tmin,
                         origin_bytes_over_F=(r["origin_app_bytes"] / (F * MiB)) if r.get("origin_app_bytes") is not None else None,
                         sha256=digest, ts=time.strftime("%Y-%m-%dT%H:%M:%S"))
                r.setdefault("n_copies", n)
                print("RESULT system=%s F=%d N=%d wall=%.2fs T_min=%.2fs wall/T_min=%.2f origin_bytes/F=%s sha=%s" % (
                    s, F, n, r["wall"], tmin, r["wall_over_tmin"],
                    "%.3f" % r["origin_bytes_over_F"] if r["origin_bytes_over_F"] is not None else "n/a",
                    "OK" if not r["bad"] else "BAD"), flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps(r, default=str) + "\n")
                if r["bad"]:
                    for p, g in r["bad"]:
                        B.info("CHECKSUM MISMATCH %s: %s" % (p, g))
                    rc = 1
                rows.append((s, r))
                shrink(run_dir, args.keep or bool(r["bad"]))
            report(a, rows)
    except B.Timeout as e:
        B.info("ERROR:", e)
        rc = 3
    except B.BenchError as e:
        B.info("ERROR:", e)
        rc = 2
    finally:
        B.cleanup_all()
        try:
            os.unlink(os.path.join(work, "origin", "payload.bin"))
        except OSError:
            pass
        if rc == 0 and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shrink(work, True)
            B.info("logs kept in %s" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
