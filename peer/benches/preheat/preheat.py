#!/usr/bin/env python3
"""Preheat benchmark: an image of L layers (default 8 × 64 MiB of random bytes) in a registry
behind the origin's upload cap, warmed on every host of a Damselfly cluster by one preheat job
(scope all_peers), against every host pulling every blob straight from the registry, in one run,
under the same caps as the distribution benchmark (../distribution).

Why a separate benchmark: `make bench` times dfget of one file; a preheat goes the whole way an
operator's (or Harbor's) request goes: REST job → the manager resolves the image at the registry
→ one scheduler picks the hosts and orders each to fetch every blob → the seed peer fetches from
the registry, the others from peers → each host reports → the job is SUCCESS.

Network (shared harness, ../../../../shared/bench/baseline.py, through ../benchkit.py): one
namespace per host on a bridge, tc tbf upload caps (registry host u_s; seed and peers u each,
download d), the manager and scheduler on the uncapped tracker host. Mutual TLS everywhere:
the manager's CA (in its data dir) issues every other certificate with `damselfly cert`.

Runs:
  damselfly  manager (SQLite) + scheduler + seed peer + N peers, all registered with the
             manager; the clock runs from the POST of the job to the poll that sees SUCCESS.
             Afterwards (not timed) every host dfgets every blob with --digest: each must come
             from its own cache (checked digest, no new registry bytes).
  pull       N hosts, each GETs every blob from the registry (curl, --pull-parallel at once per
             host, like docker's 3 concurrent layer downloads); all N at once.
Registry bytes: body bytes of successful blob GETs in the registry's own JSON log.

    T_min = max(F/u_s, F/d, (N+1)·F/(u_s + (N+1)·u))

as distribution.py computes it (the seed peer is one more host that receives the image and may
upload), F the image's blob bytes. The pull row uses the same bound so the ratios compare.
Must run as root.
"""
import argparse
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True
import benchkit as K  # noqa: E402
from benchkit import B, MiB, REPO  # noqa: E402
import registry as R  # noqa: E402

MANAGER_HTTP, MANAGER_GRPC = 8080, 65003
REPOSITORY, TAG = "bench/app", "1"
SYSTEMS = ("damselfly", "pull")
TARGET_BYTES, TARGET_TIME = 1.02, 1.3


# --------------------------------------------------------------------------- manager API
class Api:
    """The manager's REST API, reached from inside its namespace with curl (the namespaces have
    no route to the root namespace, where this script runs)."""

    def __init__(self, host, base):
        self.host, self.base, self.token = host, base, None

    def call(self, method, path, body=None, timeout=10):
        """Answers (status, parsed JSON or None)."""
        argv = ["curl", "-sS", "--max-time", str(timeout), "-X", method, "-w", "\n%{http_code}",
                self.base + path]
        if self.token:
            argv += ["-H", "authorization: Bearer " + self.token]
        if body is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
        r = subprocess.run(self.host.cmd(argv), capture_output=True, text=True, timeout=timeout + 5)
        if r.returncode != 0:
            raise B.BenchError("manager %s %s: curl %d %s" % (method, path, r.returncode, r.stderr.strip()))
        text, _, code = r.stdout.rpartition("\n")
        try:
            return int(code), json.loads(text) if text.strip() else None
        except ValueError:
            return int(code), None

    def ok(self, method, path, body=None):
        code, doc = self.call(method, path, body)
        if not 200 <= code < 300:
            raise B.BenchError("manager %s %s answered %d: %s" % (method, path, code, doc))
        return doc

    def signin(self, password):
        self.token = self.ok("POST", "/api/v1/users/signin", {"name": "root", "password": password})["token"]

    def active(self, kind):
        """Hostnames of the active schedulers / seed-peers / peers the manager knows."""
        return sorted(x["hostname"] for x in self.ok("GET", "/api/v1/%s?per_page=1000" % kind) if x["state"] == "active")


def start_manager(a, run_dir, host, env):
    """The manager on host (uncapped), SQLite in its data dir, its CA made there on first start.
    Answers (process, Api signed in as root, CA directory)."""
    mdir = os.path.join(run_dir, "manager")
    os.makedirs(mdir)
    password = secrets.token_urlsafe(18)
    menv = dict(env, DAMSELFLY_ROOT_PASSWORD=password)
    proc = B.spawn(host, [os.path.join(a.bin_dir, "manager"), "--data-dir", mdir,
                          "--http-addr", "%s:%d" % (host.addr, MANAGER_HTTP),
                          "--grpc-addr", "%s:%d" % (host.addr, MANAGER_GRPC)],
                   os.path.join(mdir, "manager.log"), env=menv)
    base = "http://%s:%d" % (host.addr, MANAGER_HTTP)
    K.wait_healthy(host, base + "/healthy", proc, "manager", timeout=60)
    api = Api(host, base)
    api.signin(password)
    return proc, api, os.path.join(mdir, "ca")


def scheduler_hosts(host):
    """The scheduler's `damselfly_scheduler_hosts` gauge (hosts announced to it)."""
    out = B.sh(host.cmd(["curl", "-s", "--max-time", "2", "http://%s:%d/metrics" % (host.addr, K.SCHED_HTTP)]),
               capture=True, check=False) or ""
    for line in out.splitlines():
        if line.startswith("damselfly_scheduler_hosts"):
            return int(float(line.split()[-1]))
    return 0


def wait_registered(api, sched_host, names, daemons, timeout=60):
    """Until the manager lists the scheduler, the seed peer and every peer as active and the
    scheduler knows every host: a preheat of scope all_peers reaches only hosts it knows."""
    want_peers = sorted(names[1:])
    end = time.monotonic() + timeout
    while True:
        B.check_deadline()
        K.check_running(daemons, names)
        got = (api.active("schedulers"), api.active("seed-peers"), api.active("peers"), scheduler_hosts(sched_host))
        if got[0] and got[1] == ["seed"] and got[2] == want_peers and got[3] >= len(names):
            return
        if time.monotonic() > end:
            raise B.BenchError("not every component registered after %ds: schedulers %s, seed peers %s, "
                               "peers %s, hosts at the scheduler %d" % ((timeout,) + got))
        time.sleep(0.5)


def job_outcome(job, names, blobs):
    """Checks a finished job's results: every host × every blob a success. Answers a list of
    problems (empty when all is well)."""
    problems = []
    states = (job.get("result") or {}).get("job_states") or []
    if job.get("state") != "SUCCESS":
        problems.append("job state %s: %s" % (job.get("state"), "; ".join(s.get("error", "") for s in states)))
    ok = set()
    for s in states:
        for r in s.get("results") or []:
            for t in r.get("success_tasks") or []:
                ok.add((t.get("hostname"), t.get("url", "").rsplit("/", 1)[-1]))
            for t in r.get("failure_tasks") or []:
                problems.append("failed: %s on %s: %s" % (t.get("url"), t.get("hostname"), t.get("description")))
    missing = [(n, b["digest"]) for n in names for b in blobs if (n, b["digest"]) not in ok]
    if missing:
        problems.append("%d host×blob results missing, e.g. %s" % (len(missing), missing[:3]))
    return problems


# --------------------------------------------------------------------------- runs
def run_damselfly(a, run_dir, storage, image, tag):
    """One preheat job of the image, scope all_peers, on a fresh cluster; timed from POST to SUCCESS."""
    N, blobs = a.N, image["blobs"]
    net = K.Net(a, N + 1, tag)                 # peers[0] is the seed peer
    env = dict(os.environ, RUST_LOG=a.rust_log, NO_COLOR="1")
    cpu0 = B.children_cpu()
    res = {}
    try:
        o, tr = net.origin, net.tracker
        reg, reglog, base = R.start(B, o, run_dir, storage)
        manager, api, ca_dir = start_manager(a, run_dir, tr, env)
        grpc = "%s:%d" % (tr.addr, MANAGER_GRPC)
        sched, sdir = K.start_scheduler(a, run_dir, tr, ca_dir, manager=grpc, env=env)
        daemons, names, socks = K.start_dfdaemons(a, run_dir, net, ca_dir, manager=grpc, env=env)
        wait_registered(api, tr, names, daemons)
        before = R.served(reglog)

        args = {"type": "image", "url": "%s/v2/%s/manifests/%s" % (base, REPOSITORY, TAG), "scope": "all_peers"}
        if a.concurrent_count:
            args["concurrent_count"] = a.concurrent_count
        tx0 = net.tx_bytes(o)
        meter = B.CpuMeter()
        t0, t0_wall = time.monotonic(), time.time()
        smp = B.NetSampler(net, reg, daemons, t0)
        job = api.ok("POST", "/api/v1/jobs", {"type": "preheat", "args": args, "scheduler_cluster_ids": None})
        job_id, t_running, last = job["id"], None, 0.0

        def finished():
            nonlocal job, t_running, last
            now = time.monotonic()
            if now - last < a.poll:
                return None
            last = now
            job = api.ok("GET", "/api/v1/jobs/%d" % job_id)
            if t_running is None and job["state"] != "PENDING":
                t_running = now
            K.check_running(daemons + [manager, sched, reg], names + ["manager", "scheduler", "registry"])
            return now if job["state"] in ("SUCCESS", "FAILURE") else None
        fin = B.wait_all([finished], "preheat", meter, poll=0.01, sampler=smp)
        wall = fin[0] - t0
        cpu = meter.result()
        a1 = argparse.Namespace(**vars(a))
        a1.N, a1.F = N + 1, image["bytes"] / MiB
        cpu.update(smp.summary(a1, wall))
        tx1 = net.tx_bytes(o)
        time.sleep(0.5)                          # the registry logs a request just after answering it
        during = R.served(reglog)
        problems = job_outcome(job, names, blobs)
        if problems:
            raise B.BenchError("preheat job %d: %s (logs in %s)" % (job_id, "; ".join(problems[:5]), run_dir))
        verified = verify_caches(a, run_dir, net, names, socks, base, blobs, env) if a.verify else None
        time.sleep(0.5)
        after = R.served(reglog)
        up_by_host, up_timeline = {}, []
        if smp.on and len(smp.series) > 1:
            end = smp.series[-1][1]
            up_by_host = {n: end[i + 1][1] - smp.first[i + 1][1] for i, n in enumerate(names)}
            up_timeline = K.per_host_timeline(smp.series)
        B.stop_procs(daemons, grace=10.0)
        B.stop_procs([sched, manager, reg])
        addr_name = {h.addr: n for h, n in zip(net.peers, names)}
        addr_name[tr.addr] = "manager"
        host_done = {n: hosts_done(os.path.join(run_dir, n, "dfdaemon.log"), t0_wall) for n in names}
        warns = {n: len(K.grep(os.path.join(run_dir, n, "dfdaemon.log"), r"\b(WARN|ERROR)\b")) for n in names}
        res = dict(system="damselfly", wall=wall, queued_s=round((t_running or fin[0]) - t0, 2),
                   registry_bytes=during["blob_bytes"] - before["blob_bytes"],
                   registry_gets=during["blob_gets"] - before["blob_gets"],
                   registry_by_host={addr_name.get(k, k): v - before["by_addr"].get(k, 0)
                                     for k, v in during["by_addr"].items() if v - before["by_addr"].get(k, 0)},
                   manifest_gets=during["manifest_gets"] - before["manifest_gets"],
                   verify_registry_bytes=after["blob_bytes"] - during["blob_bytes"] if a.verify else None,
                   verified=verified, origin_wire_bytes=(tx1 - tx0) if tx0 is not None else None,
                   up_by_host=up_by_host, up_timeline=up_timeline, job_id=job_id, host_done=host_done,
                   daemon_warnings={k: v for k, v in warns.items() if v},
                   sched_warnings=len(K.grep(os.path.join(sdir, "scheduler.log"), r"\b(WARN|ERROR)\b")), **cpu)
    finally:
        B.stop_procs([p for p in B.PROCS if p.poll() is None])
        res_cpu = B.children_cpu() - cpu0
        net.teardown()
    res["proc_cpu_s"] = round(res_cpu, 2)
    return res


def hosts_done(logpath, t0_wall):
    """Seconds from the POST to the host's last `preheated` log line (its last blob cached), from
    the dfdaemon's log timestamps (UTC, same clock); None when there is none. Best effort: it
    shows who finishes last, which the job's result does not say."""
    last = None
    for line in K.grep(logpath, r"\bpreheated\b"):
        try:
            ts = datetime.datetime.strptime(line[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
        last = max(last or 0.0, ts.timestamp() - t0_wall)
    return None if last is None else round(last, 2)


def verify_caches(a, run_dir, net, names, socks, base, blobs, env):
    """Not timed: every host dfgets every blob with --digest, one blob at a time on all hosts at
    once. A warm cache answers at once and the registry serves nothing more (checked by the
    caller); dfget exits non-zero on a digest mismatch. Answers how many copies checked out."""
    n = 0
    for b in blobs:
        url = "%s/v2/%s/blobs/%s" % (base, REPOSITORY, b["digest"])
        procs = []
        for h, name, sock in zip(net.peers, names, socks):
            out = os.path.join(run_dir, name, "out", b["digest"].split(":")[1])
            procs.append((name, out, B.spawn(h, [os.path.join(a.bin_dir, "dfget"), url, "-O", out, "-e", sock,
                                                 "--no-progress", "--digest", b["digest"]],
                                             os.path.join(run_dir, name, "verify.log"), env=env)))
        for name, out, p in procs:
            try:
                rc = p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                raise B.BenchError("dfget of a warm blob on %s took over 120 s" % name)
            if rc != 0:
                raise B.BenchError("dfget of %s on %s exited %d (see %s/%s/verify.log)" % (b["digest"], name, rc, run_dir, name))
            os.unlink(out)
            n += 1
    return n


def run_pull(a, run_dir, storage, image, tag):
    """N hosts pull every blob from the registry at once, each --pull-parallel blobs at a time."""
    N, blobs = a.N, image["blobs"]
    net = K.Net(a, N, tag)
    cpu0 = B.children_cpu()
    res = {}
    try:
        o = net.origin
        reg, reglog, base = R.start(B, o, run_dir, storage)
        before = R.served(reglog)
        outs, procs = [], []
        tx0 = net.tx_bytes(o)
        meter = B.CpuMeter()
        t0 = time.monotonic()
        for p in net.peers:
            pdir = os.path.join(run_dir, p.name)
            os.makedirs(pdir)
            argv = ["curl", "-sS", "--fail", "--max-time", str(int(a.timeout)),
                    "--parallel", "--parallel-max", str(a.pull_parallel)]
            for b in blobs:
                out = os.path.join(pdir, b["digest"].split(":")[1])
                outs.append((out, b["digest"]))
                argv += ["-o", out, "%s/v2/%s/blobs/%s" % (base, REPOSITORY, b["digest"])]
            procs.append(B.spawn(p, argv, os.path.join(pdir, "curl.log")))

        def chk(pr):
            return lambda: (time.monotonic() if pr.poll() is not None else None)
        smp = B.NetSampler(net, reg, procs, t0)
        fin = B.wait_all([chk(pr) for pr in procs], "curl", meter, sampler=smp)
        wall = max(fin) - t0
        cpu = meter.result()
        a1 = argparse.Namespace(**vars(a))
        a1.F = image["bytes"] / MiB
        cpu.update(smp.summary(a1, wall))
        tx1 = net.tx_bytes(o)
        rcs = [pr.returncode for pr in procs]
        time.sleep(0.5)
        during = R.served(reglog)
        B.stop_procs([reg])
        if any(rcs):
            raise B.BenchError("curl failed: exit codes %s (see %s/p*/curl.log)" % (rcs, run_dir))
        bad = verify_files(outs)
        if bad:
            raise B.BenchError("%d pulled blobs do not match their digests, e.g. %s" % (len(bad), bad[0]))
        res = dict(system="pull", wall=wall, registry_bytes=during["blob_bytes"] - before["blob_bytes"],
                   registry_gets=during["blob_gets"] - before["blob_gets"], verified=len(outs),
                   per_peer=[round(x - t0, 2) for x in fin],
                   origin_wire_bytes=(tx1 - tx0) if tx0 is not None else None, **cpu)
    finally:
        B.stop_procs([p for p in B.PROCS if p.poll() is None])
        res_cpu = B.children_cpu() - cpu0
        net.teardown()
    res["proc_cpu_s"] = round(res_cpu, 2)
    return res


def verify_files(outs):
    """[(path, digest)] whose sha256 is not the digest in its name."""
    def check(item):
        path, digest = item
        if not os.path.exists(path):
            return item
        return None if "sha256:" + B.sha256_file(path) == digest else item
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
        return [x for x in ex.map(check, outs) if x]


# --------------------------------------------------------------------------- image
def build_and_push(a, work):
    """Writes the image as an OCI layout, pushes it into a registry storage dir (a registry on
    127.0.0.1 in this namespace, for the push only), drops the layout. Answers the image."""
    layout, storage = os.path.join(work, "oci"), os.path.join(work, "storage")
    B.info("writing a %d × %d MiB image (OCI layout) in %s" % (a.layers, a.layer_mib, layout))
    image = R.write_image(layout, TAG, a.layers, a.layer_mib)
    image["bytes"] = sum(b["size"] for b in image["blobs"])
    local = B.Host("local", "127.0.0.1", None)
    port = B.free_port("127.0.0.1")
    reg, _, base = R.start(B, local, os.path.join(work, "push"), storage, port=port)
    try:
        B.info("pushing %s:%s with skopeo" % (REPOSITORY, TAG))
        R.push(B, local, layout, TAG, base, REPOSITORY, work)
    finally:
        B.stop_procs([reg])
    shutil.rmtree(layout, ignore_errors=True)
    return image


# --------------------------------------------------------------------------- report
def report(a, image, rows):
    """One markdown table (pasted as is into the READMEs), then the details per system."""
    F = image["bytes"] / MiB
    tmin = K.t_min(F, a.N, a.us, a.u, a.d)
    d, p = rows.get("damselfly"), rows.get("pull")

    def cells(r):
        if r is None:
            return ["–", "–", "–"]
        if r.get("error"):
            return ["FAILED", "–", "–"]
        return ["%.2f s" % r["wall"], "**%.2f**" % (r["wall"] / tmin), "**%.3f**" % (r["registry_bytes"] / image["bytes"])]
    print()
    print("== N=%d  image %d × %d MiB (%.1f MiB with config)  u_s=%g MiB/s  u=%g MiB/s  d=%s  tcp=%s"
          "   T_min = max(F/u_s, F/d, (N+1)F/(u_s+(N+1)u)) = %.2f s" % (
              a.N, a.layers, a.layer_mib, F, a.us, a.u, "%g" % a.d if a.d else "inf",
              a.tcp_cc or K.machine_cc(), tmin))
    print()
    print("| N | image | T_min | preheat (POST → SUCCESS) | preheat / T_min | registry bytes / image "
          "| plain pull | pull / T_min | pull registry bytes / image |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("| %d | %d MiB (%d × %d) | %.2f s | %s |" % (a.N, round(F), a.layers, a.layer_mib, tmin,
                                                      " | ".join(cells(d) + cells(p))))
    print("| target | | | | ≤ %.2f | ≤ %.2f | | | |" % (TARGET_TIME, TARGET_BYTES))
    print()
    for name, r in rows.items():
        if r.get("error"):
            print("  %s: FAILED: %s" % (name, r["error"]))
            continue
        line = "  %s: %.2f s, registry %d blob GETs, %.3f × image; origin wire %.3f × image; bench CPU %.0f%%, machine busy %.0f%%" % (
            name, r["wall"], r["registry_gets"], r["registry_bytes"] / image["bytes"],
            (r["origin_wire_bytes"] or 0) / image["bytes"], r.get("bench_cpu_pct", 0), r.get("cpu_busy_pct", 0))
        if r.get("origin_up_util") is not None:
            line += "; origin_util=%.2f up_util=%.2f" % (r["origin_up_util"], r["total_up_util"])
        print(line)
        if name == "damselfly":
            print("  damselfly: job %d waited %.2f s in PENDING (the manager's job poll); registry bytes by host: %s; "
                  "manifest GETs %d" % (r["job_id"], r["queued_s"],
                                        ", ".join("%s=%.3f" % (k, v / image["bytes"]) for k, v in sorted(r["registry_by_host"].items())),
                                        r["manifest_gets"]))
            if r.get("up_by_host"):
                print("  damselfly: upload by host / image (wire): %s" % ", ".join(
                    "%s=%.2f" % (k, v / image["bytes"]) for k, v in r["up_by_host"].items()))
            if a.verbose and r.get("up_timeline"):
                print("  damselfly: upload MiB/s per host over time [t, registry, seed, peer1..]:")
                for row in r["up_timeline"]:
                    print("    " + " ".join("%6s" % x for x in row))
            if r.get("verified") is not None:
                print("  damselfly: afterwards %d dfget --digest of warm blobs OK; registry bytes for them: %d" % (
                    r["verified"], r["verify_registry_bytes"]))
            if any(v is not None for v in r.get("host_done", {}).values()):
                print("  damselfly: each host's last blob cached at (s after the POST, its log): %s" % ", ".join(
                    "%s=%s" % (k, "%.1f" % v if v is not None else "?") for k, v in r["host_done"].items()))
            print("  damselfly: WARN/ERROR lines: scheduler %d, daemons %s" % (
                r["sched_warnings"], r["daemon_warnings"] or "none"))
        else:
            print("  pull: hosts done at %s s; %d blobs verified" % (", ".join("%.1f" % x for x in sorted(r["per_peer"])), r["verified"]))
    sys.stdout.flush()


def main():
    env = os.environ
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-N", type=int, default=int(env.get("N", 8)), help="peers besides the seed peer (default 8)")
    ap.add_argument("--layers", type=int, default=8, help="image layers (default 8)")
    ap.add_argument("--layer-mib", type=int, default=64, help="MiB per layer blob (default 64)")
    ap.add_argument("--us", type=float, default=float(env.get("U_S", 40)), help="registry upload MiB/s (default 40)")
    ap.add_argument("--u", type=float, default=float(env.get("U", 20)), help="peer upload MiB/s (default 20)")
    ap.add_argument("--d", default=env.get("D", "unlimited"), help="peer download MiB/s (default unlimited)")
    ap.add_argument("--systems", default="damselfly,pull", help="comma list of %s" % ",".join(SYSTEMS))
    ap.add_argument("--concurrent-count", type=int, default=0,
                    help="the preheat's concurrent_count, blobs in flight per host (default 0: the product's 8)")
    ap.add_argument("--pull-parallel", type=int, default=3,
                    help="blobs each host pulls at once in the plain pull (default 3, docker's default)")
    ap.add_argument("--no-verify", dest="verify", action="store_false",
                    help="skip the untimed check that every host's cache answers every blob")
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between polls of the job (default 0.1)")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"),
                    help="where manager, scheduler, dfdaemon, dfget, damselfly are (default target/release)")
    ap.add_argument("--df-concurrency", type=int, default=16, help="dfdaemon [download] concurrency (default 16)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between daemons healthy and the clock (default 2)")
    ap.add_argument("--rust-log", default=env.get("RUST_LOG", "info"), help="RUST_LOG for the Damselfly processes")
    ap.add_argument("--tcp-cc", default=None, help="TCP congestion control in every namespace (default: the machine's)")
    K.add_run_args(ap)
    args = ap.parse_args()
    args.d = B.parse_d(args.d)
    args.F = args.layers * args.layer_mib            # MiB, what the harness's helpers read
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            ap.error("unknown system %s" % s)
    if args.layers < 1 or args.layer_mib < 1:
        ap.error("--layers and --layer-mib must be at least 1")
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, tc)")
    for b in ("docker-registry", "skopeo", "curl", "ip", "tc", "ss", "setpriv"):
        if not shutil.which(b):
            ap.error("missing %s (make apt-deps bench-deps: docker-registry skopeo curl iproute2 util-linux)" % b)
    if "damselfly" in systems:
        for b in ("manager", "scheduler", "dfdaemon", "dfget", "damselfly"):
            if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
                ap.error("missing %s/%s (cargo build --release --bins)" % (args.bin_dir, b))

    K.harness_args(args)
    K.on_signals_exit()
    B.cleanup_stale_netns()
    F = args.F * MiB
    work = K.make_workdir(F * (args.N + 4) + 512 * MiB, args.workdir, prefix="preheatbench.")
    runners = {"damselfly": run_damselfly, "pull": run_pull}
    rc, rows = 0, {}
    try:
        image = build_and_push(args, work)
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
            print("RESULT system=%s N=%d image=%.1fMiB wall=%.2fs T_min=%.2fs wall/T_min=%.2f registry_bytes/image=%.3f" % (
                s, args.N, image["bytes"] / MiB, r["wall"], tmin, r["wall_over_tmin"], r["registry_bytes_over_image"]),
                flush=True)
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
        shutil.rmtree(os.path.join(work, "oci"), ignore_errors=True)
        if rc == 0 and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            K.shrink(work, True)
            B.info("logs kept in %s" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
