#!/usr/bin/env python3
"""Single-transfer benchmark: one file (default 1 GiB) already cached on peer A, fetched by one
other peer B over loopback, against `curl` from nginx (sendfile) of the same file, in one run.

    python3 peer/benches/single/run.py                  # 1 GiB, 3 reps each, then 16 children
    python3 peer/benches/single/run.py --size-mib 128 --children 4

Everything runs on 127.0.0.1 from release binaries (target/release: scheduler, dfdaemon, dfget,
damselfly) and Debian's nginx (nginx-light), in a temp dir under /dev/shm (or /tmp). python3 stdlib
only. Damselfly runs twice side by side (--tls both, the default): a cluster with mutual TLS on every
hop and on the piece transport (certificates from `damselfly cert`, one CA for the run), and one in
plain text; each has its own peer A.

1. A deterministic random file is served by a private nginx (sendfile on).
2. scheduler + peer A (no seed peer): `dfget` through A goes back to source; not timed. A now
   holds the only cached copy. A's peak-RSS counter (VmHWM) is then reset (clear_refs 5).
3. Alternately, --reps times each: `curl -o` from nginx, and per cluster `dfget` through a fresh peer B_i
   (new daemon, new data dir; started, healthy and announced before the clock) which the
   scheduler points at A. B_i is stopped before the next rep so A stays the only holder.
   Every copy is sha256-checked; B_i must have received size bytes from remote peers
   (its /metrics) and nginx must have seen no GET of the file besides A's and curl's.
4. --children N (default 16, 0 = skip): N more daemons fetch the file at once while A is the
   only holder (they may also swap pieces among themselves); prints the wall time until the
   last has it and A's peak RSS during that run.

Exit status: 0 ok, 1 checksum mismatch or a download that did not come from peers, 2 failure.
"""
import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MiB = 1 << 20
PROCS = []                                   # every process we started, for cleanup


class BenchError(Exception):
    pass


def log(*a):
    print("[single]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes
def spawn(argv, logpath, env=None):
    f = open(logpath, "ab")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    f.close()
    p.argv0 = os.path.basename(argv[0])
    PROCS.append(p)
    return p


def stop(procs, grace=10.0):
    """SIGTERM each (by pid), wait up to grace s, then SIGKILL the stragglers."""
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            log("%s (pid %d) ignored SIGTERM; killing" % (p.argv0, p.pid))
            p.kill()
            p.wait()


def cleanup():
    stop([p for p in PROCS if p.poll() is None], grace=5.0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(proc, ready_file, what, timeout=30.0):
    """Waits for the ready file, then for GET /healthy = 200; returns the ready JSON."""
    end = time.monotonic() + timeout
    addrs = None
    while True:
        if proc.poll() is not None:
            raise BenchError("%s exited (%s) before it was healthy" % (what, proc.returncode))
        if addrs is None and os.path.exists(ready_file):
            with open(ready_file) as f:
                addrs = json.load(f)
        if addrs is not None:
            try:
                with urllib.request.urlopen("http://%s/healthy" % addrs["http"], timeout=1) as r:
                    if r.status == 200:
                        return addrs
            except OSError:
                pass
        if time.monotonic() > end:
            raise BenchError("%s not healthy after %.0f s" % (what, timeout))
        time.sleep(0.05)


def proc_status(pid, key):
    """A /proc/<pid>/status field in KiB (VmHWM, VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when the kernel refuses."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(http_addr):
    """download_traffic_bytes_total by type from a dfdaemon's /metrics."""
    with urllib.request.urlopen("http://%s/metrics" % http_addr, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^damselfly_dfdaemon_download_traffic_bytes_total\{type="(\w+)"\} (\d+)', text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


# --------------------------------------------------------------------------- files
def make_file(path, size_mib, seed=20240601):
    """Deterministic pseudo-random content (same seed, same bytes)."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size_mib):
            block = rng.randbytes(MiB)
            h.update(block)
            f.write(block)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def check_copy(path, digest):
    """Hashes path, deletes it; returns None when it matches, else what went wrong."""
    try:
        got = sha256_file(path)
    except OSError as e:
        return str(e)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return None if got == digest else "sha256 " + got


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def disk_free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# --------------------------------------------------------------------------- nginx
def start_nginx(work, root, port):
    ndir = os.path.join(work, "nginx")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(ndir, sub))
    conf = f"""
master_process off;
daemon off;
worker_processes 1;
pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format bench '$remote_addr $status $bytes_sent $request_time "$request" "$http_range" "$http_user_agent"';
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
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""
    path = os.path.join(ndir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = spawn(["nginx", "-p", ndir, "-e", ndir + "/error.log", "-c", path], os.path.join(ndir, "stdout.log"))
    end = time.monotonic() + 10
    while True:
        if p.poll() is not None:
            raise BenchError("nginx exited (%s); see %s" % (p.returncode, ndir))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > end:
                raise BenchError("nginx not listening after 10 s")
            time.sleep(0.05)
    return p, os.path.join(ndir, "access.log")


def access_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, errors="replace") as f:
        return [line.rstrip("\n") for line in f]


# --------------------------------------------------------------------------- damselfly
class Cluster:
    """A scheduler and the dfdaemons started for it; with tls, every one holds a certificate of
    one CA made for the run (`damselfly cert`, as an operator without a manager would), so the
    gRPC hops and the piece transport run mutual TLS as in production."""

    def __init__(self, a, work, env, tls):
        self.a, self.work, self.env, self.tls = a, work, env, tls
        self.bin = a.bin_dir
        self.hard_link = a.force_hard_link
        self.ca_dir = os.path.join(work, "ca")
        os.makedirs(work, exist_ok=True)
        self.conf = "[download]\nconcurrency = %d\n\n[scheduler]\nannounce_interval_secs = 1\n" % a.df_concurrency
        d = os.path.join(work, "scheduler")
        os.makedirs(d)
        conf = os.path.join(d, "scheduler.toml")
        with open(conf, "w") as f:
            f.write('[host]\nhostname = "scheduler"\nip = "127.0.0.1"\n\n' + self.tls_section("scheduler", "scheduler", d))
        ready = os.path.join(d, "ready.json")
        self.sched = spawn([os.path.join(self.bin, "scheduler"), "-c", conf, "--grpc-addr", "127.0.0.1:0",
                            "--http-addr", "127.0.0.1:0", "--ready-file", ready],
                           os.path.join(d, "scheduler.log"), env)
        self.sched_addrs = wait_ready(self.sched, ready, "scheduler")
        self.sched_log = os.path.join(d, "scheduler.log")

    def tls_section(self, component, hostname, d):
        """[tls] for a component: a certificate issued into d/tls, or plain text."""
        if not self.tls:
            return '[tls]\nmode = "plaintext"\n'
        out = os.path.join(d, "tls")
        argv = [os.path.join(self.bin, "damselfly"), "cert", "--ca-dir", self.ca_dir, "--component", component,
                "--cluster", "1", "--hostname", hostname, "--ip", "127.0.0.1", "--out", out]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError("damselfly cert for %s failed: %s" % (hostname, r.stderr.strip()))
        return '[tls]\ncert = "%s/cert.pem"\nkey = "%s/key.pem"\nca = "%s/ca.pem"\n' % (out, out, out)

    def start_daemon(self, name, parent):
        """Starts one dfdaemon with its data under parent/name; returns (proc, ready file)."""
        d = os.path.join(parent, name)
        os.makedirs(os.path.join(d, "out"))
        conf = os.path.join(d, "dfdaemon.toml")
        with open(conf, "w") as f:
            f.write(self.conf + "\n" + self.tls_section("peer", name, d))
        ready = os.path.join(d, "ready.json")
        p = spawn([os.path.join(self.bin, "dfdaemon"), "-c", conf, "--data-dir", os.path.join(d, "data"),
                   "--hostname", name, "--scheduler", self.sched_addrs["grpc"],
                   "--http-addr", "127.0.0.1:0", "--upload-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0",
                   "--ready-file", ready], os.path.join(d, "dfdaemon.log"), self.env)
        p.name, p.dir = name, d
        return p, ready

    def dfget(self, url, out, addrs, logpath, digest=None):
        argv = [os.path.join(self.bin, "dfget"), url, "-O", out, "-e", addrs["socket"], "--no-progress"]
        if digest:
            argv += ["--digest", "sha256:" + digest]
        if self.hard_link:
            argv += ["--force-hard-link"]
        return spawn(argv, logpath, self.env)


def grep_count(path, pattern):
    if not os.path.exists(path):
        return 0
    rx = re.compile(pattern)
    with open(path, errors="replace") as f:
        return sum(1 for line in f if rx.search(line))


def tail(path, n=15):
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def watch_export(p, outdir, deadline):
    """Waits for p; returns when (monotonic) the daemon's export temp file (.NAME.PID.dfpart)
    first appeared in outdir, i.e. when the whole-content hash was done and the copy began."""
    seen = None
    while p.poll() is None and time.monotonic() < deadline:
        if seen is None and any(n.endswith(".dfpart") for n in os.listdir(outdir)):
            seen = time.monotonic()
        time.sleep(0.005)
    return seen


def finished_at(sched_log, host):
    """Epoch time of the scheduler's 'peer finished' line for host's peer (pieces all in)."""
    when = None
    for line in open(sched_log, errors="replace"):
        if "peer finished" in line and "peer_id=%s-" % host in line:
            stamp = line.split()[0].rstrip("Z")
            when = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()
    return when


def wait_proc(p, timeout, what):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s still running after %.0f s" % (what, timeout))


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of curl and of Damselfly, alternating (default 3)")
    ap.add_argument("--children", type=int, default=16,
                    help="children fetching the file from A at once after the single runs (default 16, 0 = skip)")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"))
    ap.add_argument("--workdir", default=None, help="parent of the temp dir (default /dev/shm when it has room)")
    ap.add_argument("--children-dir", default=None,
                    help="parent of the children's data dirs (default: the temp dir when memory allows, else /tmp)")
    ap.add_argument("--output-dir", metavar="DIR",
                    help="put each timed peer B's output in DIR (another file system than the cache: a copy, not a link)")
    ap.add_argument("--perf", metavar="DIR", help="record each timed peer B with `perf record -g` into DIR")
    ap.add_argument("--df-concurrency", type=int, default=16, help="dfdaemon [download] concurrency (default 16)")
    ap.add_argument("--digest", action="store_true",
                    help="also pass --digest to the timed dfgets (the daemon then verifies before it reports)")
    ap.add_argument("--force-hard-link", action="store_true",
                    help="pass --force-hard-link to dfget: the output shares the cache's inode instead of a copy")
    ap.add_argument("--settle", type=float, default=1.5, help="s between a daemon healthy and its dfget (default 1.5)")
    ap.add_argument("--timeout", type=float, default=300, help="limit for one download, s (default 300)")
    ap.add_argument("--children-timeout", type=float, default=150,
                    help="limit for the children run, s (default 150)")
    ap.add_argument("--tls", choices=("both", "on", "off"), default="both",
                    help="Damselfly with mutual TLS (on), in plain text (off), or both side by side (default)")
    ap.add_argument("--rust-log", default=os.environ.get("RUST_LOG", "info"))
    ap.add_argument("--keep", action="store_true", help="keep the logs (payload files are always removed)")
    a = ap.parse_args()

    for b in ("scheduler", "dfdaemon", "dfget", "damselfly"):
        if not os.access(os.path.join(a.bin_dir, b), os.X_OK):
            ap.error("missing %s/%s (cargo build --release -p scheduler -p peer --bins; cargo build --release "
                     "-p server --bin damselfly)" % (a.bin_dir, b))
    for b in ("nginx", "curl"):
        if not shutil.which(b):
            ap.error("missing %s (apt-get install nginx-light curl; make bench-deps)" % b)

    size = a.size_mib * MiB
    parent = a.workdir
    if parent is None:
        # origin + each A's cache + B's cache + B's output, and room to spare
        parent = "/dev/shm" if disk_free("/dev/shm") > 6 * size + 512 * MiB and mem_available() > 7 * size + (2 << 30) else "/tmp"
    work = tempfile.mkdtemp(prefix="dfsingle.", dir=parent)
    env = dict(os.environ, RUST_LOG=a.rust_log, NO_COLOR="1")

    def on_signal(sig, frm):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    rc, failed = 0, False
    try:
        rc = bench(a, work, env, size)
    except BenchError as e:
        log("ERROR:", e)
        rc, failed = 2, True
    finally:
        cleanup()
        if (failed or rc or a.keep) and os.path.isdir(work):
            for dp, _, fn in os.walk(work):       # keep logs, drop payloads
                for n in fn:
                    fp = os.path.join(dp, n)
                    if not fp.endswith((".log", ".json", ".toml", ".conf")):
                        try:
                            os.unlink(fp)
                        except OSError:
                            pass
            log("logs kept in", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


class Variant:
    """One way of running Damselfly in the comparison: its cluster and its peer A."""

    def __init__(self, label, tls):
        self.label, self.tls = label, tls
        self.times, self.b_hwm, self.a_cpu, self.b_cpu, self.phases = [], [], [], [], []


def warm_up(a, v, work, env, url, digest):
    """Starts v's cluster and peer A, which caches the file from the origin (not timed)."""
    v.cl = Cluster(a, os.path.join(work, v.label), env, v.tls)
    v.peers = os.path.join(v.cl.work, "peers")
    os.makedirs(v.peers)
    A, ready = v.cl.start_daemon("peer-a", v.peers)
    a_addrs = wait_ready(A, ready, "dfdaemon peer-a (%s)" % v.label)
    time.sleep(a.settle)
    out = os.path.join(A.dir, "out", "payload.bin")
    t0 = time.monotonic()
    g = v.cl.dfget(url, out, a_addrs, os.path.join(A.dir, "dfget.log"), digest)
    if wait_proc(g, a.timeout, "dfget through peer-a (%s)" % v.label) != 0:
        raise BenchError("dfget through peer-a (%s) exited %s:\n%s" % (
            v.label, g.returncode, tail(os.path.join(A.dir, "dfget.log"))))
    warm_s = time.monotonic() - t0
    bad = check_copy(out, digest)
    if bad:
        raise BenchError("peer-a's copy (%s) is wrong: %s" % (v.label, bad))
    v.A, v.a_hwm_warm, v.hwm_reset = A, proc_status(A.pid, "VmHWM"), reset_hwm(A.pid)
    log("%s: peer-a cached the file from the origin in %.2f s (peak RSS %.1f MiB so far)" % (
        v.label, warm_s, v.a_hwm_warm / 1024))


def timed_b(a, v, rep, url, digest, size, access):
    """One timed fetch through a fresh peer B of v's cluster; answers the problems found."""
    problems = []
    name = "peer-b%d" % (rep + 1)
    B, ready = v.cl.start_daemon(name, v.peers)
    b_addrs = wait_ready(B, ready, "dfdaemon %s (%s)" % (name, v.label))
    time.sleep(a.settle)
    n_access = len(access_lines(access))
    out = os.path.join(B.dir, "out", "payload.bin")
    if a.output_dir:
        out = os.path.join(tempfile.mkdtemp(prefix=name + "-", dir=a.output_dir), "payload.bin")
    glog = os.path.join(B.dir, "dfget.log")
    acpu = cpu_s(v.A.pid)
    prof = None
    if a.perf:
        pdata = os.path.join(a.perf, "%s-%s.perf.data" % (v.label, name))
        prof = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(B.pid), "-o", pdata],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    w0, t0 = time.time(), time.monotonic()
    g = v.cl.dfget(url, out, b_addrs, glog, digest if a.digest else None)
    t_export = watch_export(g, os.path.dirname(out), t0 + a.timeout)
    if prof:
        prof.send_signal(signal.SIGINT)
        prof.wait(timeout=60)
        log("perf profile of %s: %s (perf report -i %s --no-children)" % (name, pdata, pdata))
    if g.returncode is None:
        raise BenchError("dfget through %s (%s) still running after %.0f s" % (name, v.label, a.timeout))
    if g.returncode != 0:
        raise BenchError("dfget through %s (%s) exited %s:\n%s\n--- %s/dfdaemon.log:\n%s" % (
            name, v.label, g.returncode, tail(glog), B.dir, tail(os.path.join(B.dir, "dfdaemon.log"))))
    dt = time.monotonic() - t0
    t_pieces = finished_at(v.cl.sched_log, name)
    v.phases.append(((t_pieces - w0) if t_pieces else None, (t_export - t0) if t_export else None, dt))
    v.a_cpu.append(cpu_s(v.A.pid) - acpu)
    v.b_cpu.append(cpu_s(B.pid))
    v.b_hwm.append(proc_status(B.pid, "VmHWM"))
    traffic = metrics(b_addrs["http"])
    new_gets = [l for l in access_lines(access)[n_access:] if "/payload.bin" in l]
    bad = check_copy(out, digest)
    if a.output_dir:
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    if bad:
        problems.append("%s (%s): %s" % (name, v.label, bad))
    if traffic.get("remote_peer", 0) != size or new_gets:
        problems.append("%s (%s): not all from peer-a: traffic %s; origin requests during the run: %s" % (
            name, v.label, traffic, new_gets[:3]))
    v.times.append(dt)
    log("rep %d %-15s %7.3f s  %8.1f MiB/s  (B: %s)" % (rep + 1, v.label, dt, a.size_mib / dt, traffic))
    stop([B])
    shutil.rmtree(B.dir + "/data", ignore_errors=True)
    return problems


def bench(a, work, env, size):
    rc = 0
    origin = os.path.join(work, "origin")
    os.makedirs(origin)
    src = os.path.join(origin, "payload.bin")
    log("creating %d MiB file in %s" % (a.size_mib, work))
    digest = make_file(src, a.size_mib)
    log("sha256", digest)

    port = free_port()
    nginx, access = start_nginx(work, origin, port)
    url = "http://127.0.0.1:%d/payload.bin" % port
    variants = {"on": [Variant("damselfly", True)], "off": [Variant("damselfly-plain", False)],
                "both": [Variant("damselfly", True), Variant("damselfly-plain", False)]}[a.tls]
    for v in variants:
        warm_up(a, v, work, env, url, digest)
    origin_gets0 = len(access_lines(access))

    # --- alternating timed runs
    curl_times, problems = [], []
    for rep in range(a.reps):
        out = os.path.join(work, "curl.out")
        clog = os.path.join(work, "curl.log")
        t0 = time.monotonic()
        c = spawn(["curl", "-sS", "--fail", "-o", out, url], clog)
        if wait_proc(c, a.timeout, "curl") != 0:
            raise BenchError("curl exited %s: %s" % (c.returncode, tail(clog)))
        dt = time.monotonic() - t0
        bad = check_copy(out, digest)
        if bad:
            problems.append("curl rep %d: %s" % (rep + 1, bad))
        curl_times.append(dt)
        log("rep %d %-15s %7.3f s  %8.1f MiB/s" % (rep + 1, "curl", dt, a.size_mib / dt))
        for v in variants:
            problems += timed_b(a, v, rep, url, digest, size, access)
    if problems:
        rc = 1

    # --- report
    F = a.size_mib
    med = {"curl": statistics.median(curl_times)}
    med.update({v.label: statistics.median(v.times) for v in variants})
    print()
    print("== single transfer, %d MiB on loopback, %d reps each (alternating), %d cores" % (F, a.reps, os.cpu_count()))
    print("%-16s %10s %12s   %s" % ("system", "median_s", "MiB/s", "all runs (s)"))
    print("%-16s %10.3f %12.1f   %s" % ("curl", med["curl"], F / med["curl"], " ".join("%.3f" % x for x in curl_times)))
    for v in variants:
        print("%-16s %10.3f %12.1f   %s" % (v.label, med[v.label], F / med[v.label],
                                           " ".join("%.3f" % x for x in v.times)))
    for v in variants:
        ratio = med["curl"] / med[v.label]
        print("ratio %s/curl throughput: %.3f  (target >= 0.9: %s)" % (
            v.label, ratio, "met" if ratio >= 0.9 else "NOT met"))
    if len(variants) == 2:
        ratio = med["damselfly-plain"] / med["damselfly"]
        print("ratio TLS/plaintext throughput: %.3f  (target >= 0.9: %s)" % (ratio, "met" if ratio >= 0.9 else "NOT met"))
    for v in variants:
        print("%s: serving dfdaemon (peer-a) peak RSS while serving the single transfers: %.1f MiB%s; RSS now %.1f "
              "MiB; during its own fetch from the origin: %.1f MiB" % (
                  v.label, proc_status(v.A.pid, "VmHWM") / 1024,
                  "" if v.hwm_reset else " (VmHWM reset unsupported: includes its own fetch)",
                  proc_status(v.A.pid, "VmRSS") / 1024, v.a_hwm_warm / 1024))
        print("%s: downloading dfdaemon (peer-b) peak RSS: %s MiB; CPU s per transfer: peer-a %s, peer-b %s" % (
            v.label, "/".join("%.1f" % (x / 1024) for x in v.b_hwm), "/".join("%.2f" % x for x in v.a_cpu),
            "/".join("%.2f" % x for x in v.b_cpu)))

        def ph(i):
            got = [x[i] for x in v.phases if x[i] is not None]
            return "%.2f" % statistics.median(got) if got else "?"
        print("%s phases (median s from dfget start): all pieces in (scheduler 'peer finished') %s, "
              "whole-file hash done / export copy starts %s, dfget exits %s" % (v.label, ph(0), ph(1), ph(2)))
    sys.stdout.flush()

    # --- N children at once from A, in the first variant's cluster (TLS unless --tls off)
    v = variants[0]
    cl, A = v.cl, v.A
    kids = None
    if a.children > 0:
        try:
            kids = run_children(a, cl, A, url, digest, size, access, work)
        except BenchError as e:
            kids = dict(error=str(e), a_hwm=proc_status(A.pid, "VmHWM"), warns=0)
            rc = 2
        problems += kids.get("problems", [])
        if kids.get("problems"):
            rc = rc or 1

    # every origin request after the warm-ups must be one of curl's
    stray = [l for l in access_lines(access)[origin_gets0:] if "/payload.bin" in l and '"curl/' not in l]
    if stray:
        problems.append("origin requests not from curl after peer-a cached the file: %s" % stray[:3])
        rc = rc or 1
    warns = {os.path.relpath(p.dir, work): grep_count(os.path.join(p.dir, "dfdaemon.log"), r"\b(WARN|ERROR)\b")
             for p in PROCS if hasattr(p, "name") and not p.name.startswith("child")}
    for x in variants:
        warns["scheduler (%s)" % x.label] = grep_count(x.cl.sched_log, r"\b(WARN|ERROR)\b")
    if kids:
        warns["children"] = kids["warns"]

    if kids and kids.get("error"):
        print("%d children at once from peer-a (%s): FAILED: %s" % (a.children, v.label, kids["error"]))
        print("serving dfdaemon (peer-a) peak RSS during that run: %.1f MiB" % (kids["a_hwm"] / 1024))
    elif kids:
        print("%d children at once from peer-a (%s): wall %.2f s (last child), aggregate %.1f MiB/s, children done "
              "at %s s" % (a.children, v.label, kids["wall"], a.children * F / kids["wall"],
                           " ".join("%.1f" % x for x in sorted(kids["done"]))))
        print("serving dfdaemon (peer-a) peak RSS while serving %d children: %.1f MiB  (target <= 256: %s); "
              "peer-a uploaded %.2f x F of the %d x F; children's data in %s" % (
                  a.children, kids["a_hwm"] / 1024, "met" if kids["a_hwm"] <= 256 * 1024 else "NOT met",
                  kids["a_up"] / size, a.children, kids["dir"]))
    print("sha256: every copy %s; origin GETs besides peer-a's and curl's: %d; WARN/ERROR lines: %s; "
          "scheduler 'slow parent blocked' lines: %d" % (
              "OK" if not any("sha256" in p for p in problems) else "BAD", len(stray),
              {k: x for k, x in warns.items() if x} or "none",
              sum(grep_count(x.cl.sched_log, r"slow parent blocked") for x in variants)))
    for p in problems:
        print("PROBLEM:", p)
    sys.stdout.flush()
    return rc


def upload_bytes(http_addr):
    with urllib.request.urlopen("http://%s/metrics" % http_addr, timeout=5) as r:
        text = r.read().decode()
    return sum(int(m.group(1)) for m in re.finditer(
        r"^damselfly_dfdaemon_upload_traffic_bytes_total(?:\{[^}]*\})? (\d+)", text, re.M))


def run_children(a, cl, A, url, digest, size, access, work):
    n = a.children
    need = 2 * n * size + (1 << 30)               # each child: cache + exported copy
    parent = a.children_dir
    if parent is None:
        if work.startswith("/dev/shm") and disk_free(work) > need and mem_available() > need + (6 << 30):
            parent = work
        else:
            parent = "/tmp"                       # tmpfs would not hold n caches: disk
    cdir = tempfile.mkdtemp(prefix="dfsingle-children.", dir=parent)
    problems, ok = [], False
    try:
        kids = []
        for i in range(n):
            p, ready = cl.start_daemon("child%02d" % (i + 1), cdir)
            kids.append((p, ready))
        addrs = [wait_ready(p, r, "dfdaemon " + p.name) for p, r in kids]
        time.sleep(a.settle)
        a_ready = json.load(open(os.path.join(A.dir, "ready.json")))
        up0 = upload_bytes(a_ready["http"])
        reset_hwm(A.pid)
        log("%d children fetching at once (data in %s)" % (n, cdir))
        t0 = time.monotonic()
        gets = []
        for (p, _), ad in zip(kids, addrs):
            out = os.path.join(p.dir, "out", "payload.bin")
            gets.append((cl.dfget(url, out, ad, os.path.join(p.dir, "dfget.log"), digest if a.digest else None), out, p))
        done, pending = {}, set(range(n))
        # each copy is hashed and deleted as soon as it lands, so n exported copies never coexist
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        checks = {}
        end = t0 + a.children_timeout
        while pending:
            for i in list(pending):
                g, out, p = gets[i]
                rcode = g.poll()
                if rcode is None:
                    continue
                pending.discard(i)
                done[i] = time.monotonic() - t0
                if rcode != 0:
                    problems.append("%s: dfget exited %s: %s" % (p.name, rcode, tail(os.path.join(p.dir, "dfget.log"), 3)))
                else:
                    checks[i] = pool.submit(check_copy, out, digest)
            if time.monotonic() > end:
                progress = []
                for i in sorted(pending):
                    try:
                        got = metrics(addrs[i]["http"])
                    except OSError as e:
                        got = str(e)
                    progress.append("%s %s" % (gets[i][2].name, got))
                raise BenchError("children: %d dfgets still running after %.0f s; bytes received so far: %s" % (
                    len(pending), a.children_timeout, "; ".join(progress)))
            time.sleep(0.02)
        wall = max(done.values())
        a_hwm = proc_status(A.pid, "VmHWM")
        a_up = upload_bytes(a_ready["http"]) - up0
        pool.shutdown(wait=True)
        for i, fut in checks.items():
            bad = fut.result()
            if bad:
                problems.append("%s: %s" % (gets[i][2].name, bad))
        for (p, _), ad in zip(kids, addrs):
            t = metrics(ad["http"])
            if t.get("back_to_source", 0):
                problems.append("%s went to the origin: %s" % (p.name, t))
        stop([p for p, _ in kids])
        ok = not problems
        warns = sum(grep_count(os.path.join(p.dir, "dfdaemon.log"), r"\b(WARN|ERROR)\b") for p, _ in kids)
        return dict(wall=wall, done=list(done.values()), a_hwm=a_hwm, a_up=a_up, dir=parent, problems=problems,
                    warns=warns)
    finally:
        stop([p for p in PROCS if hasattr(p, "name") and p.name.startswith("child") and p.poll() is None])
        if a.keep or not ok:
            dst = os.path.join(work, "children")
            os.makedirs(dst, exist_ok=True)
            for dp, _, fn in os.walk(cdir):
                for f in fn:
                    if f.endswith(".log"):
                        rel = os.path.relpath(os.path.join(dp, f), cdir)
                        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                        shutil.copy(os.path.join(dp, f), os.path.join(dst, rel))
        shutil.rmtree(cdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
