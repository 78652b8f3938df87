"""What the namespace benchmarks (distribution/, preheat/) share: the shared baseline harness
(../shared/bench/baseline.py beside the repository, imported as `B`), the bound they compare
against, and starting a Damselfly cluster inside the harness's namespaces.

Kept in one place so that every benchmark runs Damselfly the same way: the same caps, the same
configuration of scheduler and dfdaemons, the same certificates (`damselfly cert`, one CA per
run). A benchmark adds only what it measures. python3 stdlib only; the processes are started
with the harness's `spawn`, so they die with the harness and its cleanup stops them by PID.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BASELINE_DIR = os.environ.get("BASELINE_DIR") or os.path.join(REPO, "..", "shared", "bench")
sys.path.insert(0, os.path.abspath(BASELINE_DIR))
sys.dont_write_bytecode = True           # no __pycache__ in the shared directory or here
try:
    import baseline as B  # noqa: E402,F401  (re-exported: the benchmarks use B.*)
except ImportError:
    sys.exit("cannot import baseline.py from %s (set BASELINE_DIR)" % BASELINE_DIR)

MiB = B.MiB
SCHED_GRPC, SCHED_HTTP = 8002, 8004
DF_UPLOAD, DF_HTTP = 4000, 4003


def t_min(F, N, us, u, d):
    """The issue's bound: the seed peer is one more uploader that must also receive the file."""
    terms = [F / us, (N + 1) * F / (us + (N + 1) * u)]
    if d:
        terms.append(F / d)
    return max(terms)


class Net(B.Net):
    """The baseline's star network; optionally with another TCP congestion control in every
    namespace (new namespaces inherit the machine's default, often bbr)."""

    def __init__(self, args, n_peers, tag):
        super().__init__(args, n_peers, tag)
        if getattr(args, "tcp_cc", None):
            for h in self.hosts.values():
                B.sh(h.cmd(["sysctl", "-q", "-w", "net.ipv4.tcp_congestion_control=%s" % args.tcp_cc]))


def harness_args(args):
    """Sets what the shared harness's runners and Net read, and makes them build our Net."""
    args.net, args.app_limits, args.cap_basis = "netns", False, "payload"
    args.comp = (args.mtu + 14) / (args.mtu - 52)
    args.announce_interval, args.aria2_log_level = 0, "warn"
    B.VERBOSE, B.NICE = args.verbose, args.nice
    B.Net = Net
    B.DEADLINE = time.monotonic() + args.timeout


def add_run_args(ap):
    """The options every namespace bench takes the same way (network shape, limits, output)."""
    ap.add_argument("--mtu", type=int, default=1500)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay on every downlink")
    ap.add_argument("--timeout", type=float, default=3600, help="hard limit for the whole invocation, s (default 3600)")
    ap.add_argument("--nice", type=int, default=0, help="nice level of the benchmarked processes")
    ap.add_argument("--workdir", default=None, help="parent of the temp dir (default /dev/shm when it has room)")
    ap.add_argument("--keep", action="store_true", help="keep the logs of every run (payload copies are dropped)")
    ap.add_argument("--json", default=None, help="append one JSON object per run to this file")
    ap.add_argument("-v", "--verbose", action="store_true")


def on_signals_exit():
    """SIGTERM/SIGINT/SIGHUP raise SystemExit, so `finally` blocks stop processes and namespaces."""
    def on_signal(sig, frm):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


def make_workdir(need_bytes, parent=None, prefix="dfbench."):
    """A temp dir on /dev/shm when it has room for need_bytes (the copies are tmpfs-fast), else /tmp."""
    if parent is None:
        parent = "/tmp"
        try:
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize > need_bytes:
                parent = "/dev/shm"
        except OSError:
            pass
    work = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(work, 0o755)
    return work


def machine_cc():
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            return f.read().strip()
    except OSError:
        return "?"


def wait_healthy(host, url, proc, what, timeout=30):
    end = time.monotonic() + timeout
    while True:
        B.check_deadline()
        if proc.poll() is not None:
            raise B.BenchError("%s exited (%s) before becoming healthy" % (what, proc.returncode))
        if B.sh(host.cmd(["curl", "-sf", "-o", "/dev/null", "--max-time", "1", url]), check=False) == 0:
            return
        if time.monotonic() > end:
            raise B.BenchError("%s not healthy at %s after %ds" % (what, url, timeout))
        time.sleep(0.1)


def grep(path, pattern):
    if not os.path.exists(path):
        return []
    rx = re.compile(pattern)
    with open(path, errors="replace") as f:
        return [line.rstrip("\n") for line in f if rx.search(line)]


def issue_cert(a, ca_dir, component, hostname, ip, out):
    """`damselfly cert`: a certificate of the CA in ca_dir (made there when it holds none), as an
    operator without a manager would issue it."""
    argv = [os.path.join(a.bin_dir, "damselfly"), "cert", "--ca-dir", ca_dir,
            "--component", component, "--cluster", "1", "--hostname", hostname, "--ip", ip, "--out", out]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise B.BenchError("damselfly cert for %s failed: %s" % (hostname, r.stderr.strip()))
    return out


def tls_section(a, ca_dir, component, hostname, ip, d):
    """[tls] for a component: a certificate of the run's CA, or plain text when component is falsy."""
    if not component:
        return '\n[tls]\nmode = "plaintext"\n'
    out = issue_cert(a, ca_dir, component, hostname, ip, os.path.join(d, "tls"))
    return '\n[tls]\ncert = "%s/cert.pem"\nkey = "%s/key.pem"\nca = "%s/ca.pem"\n' % (out, out, out)


def start_scheduler(a, run_dir, host, ca_dir, tls=True, manager=None, env=None):
    """The scheduler on host (the uncapped tracker host); registered with manager (host:port)
    when given. Answers (process, its directory) once healthy."""
    sdir = os.path.join(run_dir, "scheduler")
    os.makedirs(sdir)
    sconf = os.path.join(sdir, "scheduler.toml")
    with open(sconf, "w") as f:
        f.write('[host]\nhostname = "scheduler"\nip = "%s"\n' % host.addr)
        if manager:
            f.write('\n[manager]\naddr = "%s"\n' % manager)
        f.write(tls_section(a, ca_dir, tls and "scheduler", "scheduler", host.addr, sdir))
        extra = os.environ.get("DAMSELFLY_SCHEDULER_CONFIG")
        if extra:                        # an experiment's settings (tables other than [host], [tls])
            with open(extra) as e:
                f.write("\n" + e.read())
    sched = B.spawn(host, [os.path.join(a.bin_dir, "scheduler"), "-c", sconf,
                           "--grpc-addr", "%s:%d" % (host.addr, SCHED_GRPC),
                           "--http-addr", "%s:%d" % (host.addr, SCHED_HTTP)],
                    os.path.join(sdir, "scheduler.log"), env=env)
    wait_healthy(host, "http://%s:%d/healthy" % (host.addr, SCHED_HTTP), sched, "scheduler")
    return sched, sdir


def start_dfdaemons(a, run_dir, net, ca_dir, tls=True, manager=None, env=None, registry_mirror=None):
    """One dfdaemon per net.peers host: peers[0] is the seed peer ("seed"), the others "peer<i>".
    Each may reach the origin's private address (seed orders, preheats); with registry_mirror
    (a URL), each one's proxy (127.0.0.1:4001 in its namespace) mirrors that registry. Answers (processes,
    names, download sockets) once every one is healthy and --settle seconds have passed (every
    host announced, the order streams open)."""
    sch, o = net.tracker, net.origin
    names, socks, daemons = [], [], []
    for idx, h in enumerate(net.peers):
        name = "seed" if idx == 0 else "peer%d" % idx
        ddir = os.path.join(run_dir, name)
        os.makedirs(os.path.join(ddir, "out"))
        conf = os.path.join(ddir, "dfdaemon.toml")
        with open(conf, "w") as f:
            # host.ip: the address other peers dial for pieces (this namespace's address)
            f.write('[host]\nip = "%s"\n\n[download]\nconcurrency = %d\n\n'
                    '[scheduler]\nannounce_interval_secs = 1\n' % (h.addr, a.df_concurrency))
            if getattr(a, "df_upload_concurrency", 0):
                f.write('\n[upload]\nconcurrency = %d\n' % a.df_upload_concurrency)
            # The origin's namespace address is private: let the seed peer's order reach it.
            f.write('\n[proxy]\nallowed_private_networks = ["%s/32"]\n' % o.addr)
            if registry_mirror:
                f.write('registry_mirror = "%s"\n' % registry_mirror)
            if manager:
                f.write('\n[manager]\naddr = "%s"\n' % manager)
            role = "seed-peer" if idx == 0 else "peer"
            f.write(tls_section(a, ca_dir, tls and role, name, h.addr, ddir))
        argv = [os.path.join(a.bin_dir, "dfdaemon"), "-c", conf, "--data-dir", os.path.join(ddir, "data"),
                "--hostname", name, "--scheduler", "%s:%d" % (sch.addr, SCHED_GRPC),
                "--http-addr", "%s:%d" % (h.addr, DF_HTTP), "--upload-addr", "%s:%d" % (h.addr, DF_UPLOAD)]
        if idx == 0:
            argv.append("--seed")
        daemons.append(B.spawn(h, argv, os.path.join(ddir, "dfdaemon.log"), env=env))
        names.append(name)
        socks.append(os.path.join(ddir, "data", "dfdaemon.sock"))
    for h, p, name in zip(net.peers, daemons, names):
        wait_healthy(h, "http://%s:%d/healthy" % (h.addr, DF_HTTP), p, "dfdaemon " + name)
    time.sleep(a.settle)                 # every host announced, the seed's watch stream open
    check_running(daemons, names)
    return daemons, names, socks


def check_running(daemons, names):
    for p, name in zip(daemons, names):
        if p.poll() is not None:
            raise B.BenchError("dfdaemon %s exited (%s)" % (name, p.returncode))


def per_host_timeline(series, step=1.0):
    """[[t, origin, seed, peer1..peerN] upload MiB/s per ~step s] from NetSampler samples."""
    out, prev = [], series[0]
    for t, v in series[1:]:
        if t - prev[0] >= step or (t, v) == series[-1]:
            dt = max(1e-9, t - prev[0])
            out.append([round(t, 1)] + [round((v[i][1] - prev[1][i][1]) / MiB / dt, 1) for i in range(len(v))])
            prev = (t, v)
    return out


def shrink(run_dir, keep_logs):
    """Drop the payload copies (tmpfs); keep the logs when asked."""
    if not keep_logs:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for dp, _, fn in os.walk(run_dir):
        for n in fn:
            fp = os.path.join(dp, n)
            try:
                if os.path.getsize(fp) > MiB and not fp.endswith(".log"):
                    os.unlink(fp)
            except OSError:
                pass
