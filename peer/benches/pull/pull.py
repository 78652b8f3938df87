#!/usr/bin/env python3
"""Pull benchmark: an image (default 4 × 64 MiB layers of random bytes, 256 MiB) pulled by the
real `skopeo` (containers/image, the library CRI-O and podman use) on N hosts at once, through
each host's dfdaemon as its registry mirror, against the same N skopeos straight from the
registry, in one run, under the distribution benchmark's caps (../distribution); then a warm
pull (the image already in the host's cache) against one direct pull alone.

Why a separate benchmark: `make bench` times dfget of one file and `make bench-preheat` a
preheat job; this is what a node's runtime does on a cold start: resolve the manifest through
the mirror (forwarded to the registry), then fetch every blob, each through P2P (the mirror asks
the registry with a HEAD whether this requester may have it, `proxy/authz.rs`).

Network (shared harness, ../../../../shared/bench/baseline.py, through ../benchkit.py): one
namespace per host on a bridge, tc tbf upload caps (registry host u_s; seed and peers u each,
download d), the scheduler on the uncapped tracker host, no manager (certificates from
`damselfly cert`). Each dfdaemon's proxy listens on 127.0.0.1:4001 in its namespace with
`[proxy] registry_mirror` the registry, so `skopeo copy docker://127.0.0.1:4001/bench/app:1`
pulls through it, as a registries.conf `[[registry.mirror]]` would make it.

Runs, in this order:
  damselfly  scheduler + seed peer + N dfdaemons; N skopeos at once, each through its own
             host's mirror; the clock runs from their start until the last one exits.
  warm       then, on peer1 (every blob already in its cache), one more skopeo through its
             mirror: the manifest still comes from the registry, every blob from the cache.
  direct     a fresh registry host and N hosts; N skopeos at once straight from the registry.
  alone      then one skopeo alone straight from the registry (the warm pull's yardstick).
Registry bytes: body bytes of successful blob GETs in the registry's own JSON log.

    T_min = max(F/u_s, F/d, (N+1)·F/(u_s + (N+1)·u))

as the preheat benchmark computes it (the seed peer is one more host that receives the image
and may upload), F the image's blob bytes; the direct row uses the same bound. Must run as root.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "preheat"))
sys.dont_write_bytecode = True
import benchkit as K  # noqa: E402
from benchkit import B, MiB, REPO  # noqa: E402
import registry as R  # noqa: E402
import preheat as P  # noqa: E402

REPOSITORY, TAG = P.REPOSITORY, P.TAG
MIRROR = "127.0.0.1:4001"
SYSTEMS = ("damselfly", "direct")
TARGET_BYTES, TARGET_WARM = 1.02, 1.0


def skopeo(a, host, source, out, logpath):
    """`skopeo copy` of bench/app:1 from `source` (host:port, plain HTTP) into a `dir:` at out,
    in host's namespace. Answers the process."""
    argv = ["skopeo", "copy", "--quiet", "--insecure-policy", "--retry-times", "0", "--src-tls-verify=false",
            "--src-no-creds", "docker://%s/%s:%s" % (source, REPOSITORY, TAG), "dir:%s" % out]
    return B.spawn(host, argv, logpath)


def pull_at_once(a, hosts, sources, run_dir, what, meter, sampler_args=None):
    """One skopeo per host at once (host i from sources[i]); answers ([finish - t0], outputs,
    sampler) once every one has exited; raises if one failed. sampler_args: (net, registry
    process, the processes per net.peers host, or None for the skopeos) to sample the links."""
    procs, outs = [], []
    t0 = time.monotonic()
    for h, src in zip(hosts, sources):
        d = os.path.join(run_dir, h.name + "-" + what)
        os.makedirs(d, exist_ok=True)
        out = os.path.join(d, "image")
        outs.append(out)
        procs.append(skopeo(a, h, src, out, os.path.join(d, "skopeo.log")))

    def chk(pr):
        return lambda: (time.monotonic() if pr.poll() is not None else None)
    smp = None
    if sampler_args:
        net, reg, per_host = sampler_args
        smp = B.NetSampler(net, reg, per_host or procs, t0)
    fin = B.wait_all([chk(pr) for pr in procs], "skopeo", meter, sampler=smp)
    failed = [(h.name, pr.returncode) for h, pr in zip(hosts, procs) if pr.returncode != 0]
    if failed:
        raise B.BenchError("skopeo %s failed on %s (logs in %s)" % (what, failed, run_dir))
    return [x - t0 for x in fin], outs, smp


def verify_pulled(outs, blobs):
    """Every blob of the image in every `dir:` output, by its sha256."""
    items = [(os.path.join(out, b["digest"].split(":")[1]), b["digest"]) for out in outs for b in blobs]
    bad = P.verify_files(items)
    if bad:
        raise B.BenchError("%d pulled blobs do not match their digests, e.g. %s" % (len(bad), bad[0]))
    return len(items)


def run_damselfly(a, run_dir, storage, image, tag):
    """N skopeos at once through their hosts' mirrors, then a warm pull on peer1."""
    N, blobs = a.N, image["blobs"]
    net = K.Net(a, N + 1, tag)                 # peers[0] is the seed peer
    env = dict(os.environ, RUST_LOG=a.rust_log, NO_COLOR="1")
    res = {}
    try:
        o, tr = net.origin, net.tracker
        reg, reglog, base = R.start(B, o, run_dir, storage)
        ca_dir = os.path.join(run_dir, "ca")
        sched, _ = K.start_scheduler(a, run_dir, tr, ca_dir, env=env)
        daemons, names, _ = K.start_dfdaemons(a, run_dir, net, ca_dir, env=env, registry_mirror=base)
        before = R.served(reglog)
        nodes = net.peers[1:]
        meter = B.CpuMeter()
        times, outs, smp = pull_at_once(a, nodes, [MIRROR] * N, run_dir, "cold", meter,
                                        sampler_args=(net, reg, daemons))
        wall = max(times)
        cpu = meter.result()
        a1 = argparse.Namespace(**vars(a))
        a1.N, a1.F = N + 1, image["bytes"] / MiB
        cpu.update(smp.summary(a1, wall))
        K.check_running(daemons, names)
        time.sleep(0.5)                          # the registry logs a request just after answering it
        during = R.served(reglog)

        warm_times, warm_outs, _ = pull_at_once(a, nodes[:1], [MIRROR], run_dir, "warm", B.CpuMeter())
        time.sleep(0.5)
        after = R.served(reglog)
        verified = verify_pulled(outs + warm_outs, blobs)
        B.stop_procs(daemons, grace=10.0)
        B.stop_procs([sched, reg])
        warns = {n: len(K.grep(os.path.join(run_dir, n, "dfdaemon.log"), r"\b(WARN|ERROR)\b")) for n in names}
        res = dict(system="damselfly", wall=wall, per_peer=[round(x, 2) for x in times],
                   registry_bytes=during["blob_bytes"] - before["blob_bytes"],
                   registry_gets=during["blob_gets"] - before["blob_gets"],
                   registry_heads=during["blob_heads"] - before["blob_heads"],
                   manifest_gets=during["manifest_gets"] - before["manifest_gets"],
                   warm=warm_times[0], warm_registry_bytes=after["blob_bytes"] - during["blob_bytes"],
                   warm_registry_heads=after["blob_heads"] - during["blob_heads"],
                   verified=verified, daemon_warnings={k: v for k, v in warns.items() if v}, **cpu)
    finally:
        B.stop_procs([p for p in B.PROCS if p.poll() is None])
        net.teardown()
    return res


def run_direct(a, run_dir, storage, image, tag):
    """N skopeos at once straight from the registry, then one alone."""
    N, blobs = a.N, image["blobs"]
    net = K.Net(a, N, tag)
    res = {}
    try:
        o = net.origin
        reg, reglog, base = R.start(B, o, run_dir, storage)
        source = base.split("://", 1)[1]
        before = R.served(reglog)
        meter = B.CpuMeter()
        times, outs, smp = pull_at_once(a, net.peers, [source] * N, run_dir, "direct", meter,
                                        sampler_args=(net, reg, None))
        wall = max(times)
        cpu = meter.result()
        a1 = argparse.Namespace(**vars(a))
        a1.F = image["bytes"] / MiB
        cpu.update(smp.summary(a1, wall))
        time.sleep(0.5)
        during = R.served(reglog)
        alone, alone_outs, _ = pull_at_once(a, net.peers[:1], [source], run_dir, "alone", B.CpuMeter())
        verified = verify_pulled(outs + alone_outs, blobs)
        B.stop_procs([reg])
        res = dict(system="direct", wall=wall, per_peer=[round(x, 2) for x in times],
                   registry_bytes=during["blob_bytes"] - before["blob_bytes"],
                   registry_gets=during["blob_gets"] - before["blob_gets"], alone=alone[0],
                   verified=verified, **cpu)
    finally:
        B.stop_procs([p for p in B.PROCS if p.poll() is None])
        net.teardown()
    return res


def report(a, image, rows):
    """One markdown table (pasted as is into the README), then the details."""
    F = image["bytes"] / MiB
    tmin = K.t_min(F, a.N, a.us, a.u, a.d)
    d, p = rows.get("damselfly") or {}, rows.get("direct") or {}

    def ok(r):
        return r and not r.get("error")
    cold = ["%.2f s" % d["wall"], "**%.2f**" % (d["wall"] / tmin), "**%.3f**" % (d["registry_bytes"] / image["bytes"])] \
        if ok(d) else ["–", "–", "–"]
    direct = ["%.2f s" % p["wall"], "**%.2f**" % (p["wall"] / tmin), "**%.3f**" % (p["registry_bytes"] / image["bytes"])] \
        if ok(p) else ["–", "–", "–"]
    warm = "%.2f s" % d["warm"] if ok(d) else "–"
    alone = "%.2f s" % p["alone"] if ok(p) else "–"
    ratio = "**%.2f**" % (d["warm"] / p["alone"]) if ok(d) and ok(p) else "–"
    print()
    print("== N=%d  image %d × %d MiB (%.1f MiB with config)  u_s=%g MiB/s  u=%g MiB/s  d=%s  tcp=%s"
          "   T_min = max(F/u_s, F/d, (N+1)F/(u_s+(N+1)u)) = %.2f s" % (
              a.N, a.layers, a.layer_mib, F, a.us, a.u, "%g" % a.d if a.d else "inf",
              a.tcp_cc or K.machine_cc(), tmin))
    print()
    print("| N | image | T_min | skopeo via dfdaemon | / T_min | registry bytes / image | skopeo direct | / T_min "
          "| registry bytes / image | warm pull | direct pull alone | warm / direct |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("| %d | %d MiB (%d × %d) | %.2f s | %s | %s | %s | %s | %s |" % (
        a.N, round(F), a.layers, a.layer_mib, tmin, " | ".join(cold), " | ".join(direct), warm, alone, ratio))
    print("| target | | | | | ≤ %.2f | | | | | | ≤ %.2f |" % (TARGET_BYTES, TARGET_WARM))
    print()
    for name, r in rows.items():
        if r.get("error"):
            print("  %s: FAILED: %s" % (name, r["error"]))
            continue
        print("  %s: hosts done at %s s; %d blob GETs at the registry; %d copies verified; bench CPU %.0f%%, "
              "machine busy %.0f%%" % (name, ", ".join("%.1f" % x for x in sorted(r["per_peer"])), r["registry_gets"],
                                       r["verified"], r.get("bench_cpu_pct", 0), r.get("cpu_busy_pct", 0)))
        if name == "damselfly":
            print("  damselfly: blob HEADs at the registry %d (the mirror's authorization), manifest GETs %d; "
                  "warm pull: %d blob bytes, %d blob HEADs at the registry; WARN/ERROR lines %s" % (
                      r["registry_heads"], r["manifest_gets"], r["warm_registry_bytes"], r["warm_registry_heads"],
                      r["daemon_warnings"] or "none"))
    sys.stdout.flush()


def main():
    env = os.environ
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-N", type=int, default=int(env.get("N", 4)), help="pulling hosts (default 4)")
    ap.add_argument("--layers", type=int, default=4, help="image layers (default 4)")
    ap.add_argument("--layer-mib", type=int, default=64, help="MiB per layer blob (default 64)")
    ap.add_argument("--us", type=float, default=float(env.get("U_S", 40)), help="registry upload MiB/s (default 40)")
    ap.add_argument("--u", type=float, default=float(env.get("U", 20)), help="peer upload MiB/s (default 20)")
    ap.add_argument("--d", default=env.get("D", "unlimited"), help="peer download MiB/s (default unlimited)")
    ap.add_argument("--systems", default="damselfly,direct", help="comma list of %s" % ",".join(SYSTEMS))
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"),
                    help="where scheduler, dfdaemon, damselfly are (default target/release)")
    ap.add_argument("--df-concurrency", type=int, default=16, help="dfdaemon [download] concurrency (default 16)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between daemons healthy and the clock (default 2)")
    ap.add_argument("--rust-log", default=env.get("RUST_LOG", "info"), help="RUST_LOG for the Damselfly processes")
    ap.add_argument("--tcp-cc", default=None, help="TCP congestion control in every namespace (default: the machine's)")
    K.add_run_args(ap)
    args = ap.parse_args()
    args.d = B.parse_d(args.d)
    args.F = args.layers * args.layer_mib
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            ap.error("unknown system %s" % s)
    if args.N < 1 or args.layers < 1 or args.layer_mib < 1:
        ap.error("-N, --layers and --layer-mib must be at least 1")
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, tc)")
    for b in ("docker-registry", "skopeo", "curl", "ip", "tc", "ss", "setpriv"):
        if not shutil.which(b):
            ap.error("missing %s (make apt-deps bench-deps: docker-registry skopeo curl iproute2 util-linux)" % b)
    if "damselfly" in systems:
        for b in ("scheduler", "dfdaemon", "damselfly"):
            if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
                ap.error("missing %s/%s (cargo build --release --bins)" % (args.bin_dir, b))

    K.harness_args(args)
    K.on_signals_exit()
    B.cleanup_stale_netns()
    F = args.F * MiB
    work = K.make_workdir(F * (2 * args.N + 6) + 512 * MiB, args.workdir, prefix="pullbench.")
    runners = {"damselfly": run_damselfly, "direct": run_direct}
    rc, rows = 0, {}
    try:
        image = P.build_and_push(args, work)
        tmin = K.t_min(image["bytes"] / MiB, args.N, args.us, args.u, args.d)
        for i, s in enumerate(systems):
            run_dir = os.path.join(work, s)
            os.makedirs(run_dir)
            os.chmod(run_dir, 0o755)
            B.info("run %s: N=%d, image %d × %d MiB" % (s, args.N, args.layers, args.layer_mib))
            try:
                r = runners[s](args, run_dir, os.path.join(work, "storage"), image, "r%d%s" % (i, s[:2]))
            except B.Timeout:
                raise
            except B.BenchError as e:
                B.info("ERROR in %s: %s (logs in %s)" % (s, e, run_dir))
                rows[s] = {"error": str(e)}
                rc = 2
                K.shrink(run_dir, True)
                continue
            r.update(N=args.N, layers=args.layers, layer_mib=args.layer_mib, image_bytes=image["bytes"],
                     U_S=args.us, U=args.u, D=args.d, T_min=tmin, wall_over_tmin=r["wall"] / tmin,
                     registry_bytes_over_image=r["registry_bytes"] / image["bytes"],
                     ts=time.strftime("%Y-%m-%dT%H:%M:%S"))
            print("RESULT system=%s N=%d image=%.1fMiB wall=%.2fs T_min=%.2fs wall/T_min=%.2f registry_bytes/image=%.3f%s" % (
                s, args.N, image["bytes"] / MiB, r["wall"], tmin, r["wall_over_tmin"], r["registry_bytes_over_image"],
                " warm=%.2fs" % r["warm"] if "warm" in r else " alone=%.2fs" % r["alone"]), flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r, default=str) + "\n")
            rows[s] = r
            K.shrink(run_dir, args.keep)
        report(args, image, rows)
    except B.Timeout as e:
        B.info("ERROR:", e)
        rc = 3
    except B.BenchError as e:
        B.info("ERROR:", e)
        rc = 2
    finally:
        B.cleanup_all()
        shutil.rmtree(os.path.join(work, "storage"), ignore_errors=True)
        if rc == 0 and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            K.shrink(work, True)
            B.info("logs kept in %s" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
