"""The preheat benchmark's origin: an OCI image written by hand as an OCI layout, pushed with
`skopeo copy --preserve-digests` into Debian's `docker-registry` (distribution 2.8), and the
registry's own request log read back to count the blob bytes it served.

The image is built offline, in Python, the way testkit/src/registry.rs builds the tests' images
in Rust: each layer an uncompressed tar holding one file of random (incompressible) bytes, sized
so the layer blob is exactly the asked size (a whole number of pieces), then a config naming
the layers and one OCI manifest. The bytes come from os.urandom and are hashed while written,
so a 512 MiB image costs one pass over its bytes.

Counting follows testkit's `served()`: the registry logs one JSON line per request
(`http.request.method`, `http.request.uri`, `http.response.status`, `http.response.written`,
`http.request.remoteaddr`); a successful GET under `/blobs/` served `written` body bytes.
"""
import hashlib
import json
import os
import subprocess
import time

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
REGISTRY_PORT = 5000
TAR_OVERHEAD = 512 + 1024              # one ustar header, two zero blocks at the end


def tar_header(name, size):
    """A POSIX ustar header for one regular file of size bytes (as testkit's tar_of)."""
    h = bytearray(512)

    def field(at, value):
        h[at:at + len(value)] = value
    field(0, name.encode())
    field(100, b"0000644\0")
    field(108, b"0000000\0")
    field(116, b"0000000\0")
    field(124, b"%011o\0" % size)
    field(136, b"00000000000\0")
    field(148, b"        ")
    h[156] = ord("0")
    field(257, b"ustar\0")
    field(263, b"00")
    field(148, b"%06o\0 " % sum(h))
    return bytes(h)


def put_blob(blobs, data):
    """Stores bytes under blobs/<sha256>; answers the descriptor fields (digest, size)."""
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hexd), "wb") as f:
        f.write(data)
    return "sha256:" + hexd, len(data)


def write_layer(blobs, index, blob_bytes):
    """One layer blob of exactly blob_bytes: a tar of a file of random bytes. Written to a temp
    name and hashed on the way, then renamed to its digest."""
    body = blob_bytes - TAR_OVERHEAD
    if body <= 0 or body % 512:
        raise ValueError("a layer blob must be a multiple of 512 bytes above %d" % TAR_OVERHEAD)
    tmp = os.path.join(blobs, "layer-%d.tmp" % index)
    h = hashlib.sha256()
    with open(tmp, "wb") as f:
        for chunk in (tar_header("data-%d.bin" % index, body),):
            h.update(chunk)
            f.write(chunk)
        left = body
        while left:
            chunk = os.urandom(min(MiB, left))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
        tail = bytes(1024)
        h.update(tail)
        f.write(tail)
    hexd = h.hexdigest()
    os.rename(tmp, os.path.join(blobs, hexd))
    return "sha256:" + hexd, blob_bytes


def write_image(layout, tag, layers, layer_mib):
    """An OCI image layout in `layout`, tagged `tag`: `layers` layers of layer_mib MiB each, a
    config, one manifest. Answers {manifest_digest, blobs: [{digest, size, media_type}]} with the
    config first, as the manifest lists them."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    descs = []
    for i in range(layers):
        digest, size = write_layer(blobs, i, layer_mib * MiB)
        descs.append({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": size})
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
    cdigest, csize = put_blob(blobs, json.dumps(config).encode())
    cdesc = {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": descs}
    body = json.dumps(manifest).encode()
    mdigest, msize = put_blob(blobs, body)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    return {"manifest_digest": mdigest,
            "blobs": [{"digest": d["digest"], "size": d["size"], "media_type": d["mediaType"]}
                      for d in [cdesc] + descs]}


def write_config(path, storage, addr):
    """The registry's config.yml: filesystem storage, JSON log (one line per request) on stderr,
    no access log (the app log already carries every request), listening on addr."""
    with open(path, "w") as f:
        f.write("version: 0.1\n"
                "log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                "http:\n  addr: %s\n  secret: damselfly-bench\n" % (storage, addr))


def start(B, host, run_dir, storage, port=REGISTRY_PORT, timeout=20):
    """`docker-registry serve` in host's namespace on host.addr:port over storage; answers
    (process, log path, base URL) once GET /v2/ answers 200."""
    rdir = os.path.join(run_dir, "registry")
    os.makedirs(rdir, exist_ok=True)
    conf = os.path.join(rdir, "config.yml")
    write_config(conf, storage, "%s:%d" % (host.addr, port))
    logpath = os.path.join(rdir, "registry.log")
    proc = B.spawn(host, ["docker-registry", "serve", conf], logpath)
    base = "http://%s:%d" % (host.addr, port)
    end = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise B.BenchError("docker-registry exited (%s); see %s" % (proc.returncode, logpath))
        if B.sh(host.cmd(["curl", "-sf", "-o", "/dev/null", "--max-time", "1", base + "/v2/"]), check=False) == 0:
            return proc, logpath, base
        if time.monotonic() > end:
            raise B.BenchError("docker-registry not answering at %s/v2/ after %ds" % (base, timeout))
        time.sleep(0.1)


def push(B, host, layout, tag, base, repository, authdir):
    """skopeo copy --preserve-digests of the layout to <registry>/<repository>:<tag>, run in
    host's namespace (over its loopback, so outside every cap)."""
    ref = "docker://%s/%s:%s" % (base.split("://", 1)[1], repository, tag)
    argv = ["skopeo", "copy", "--quiet", "--insecure-policy", "--preserve-digests", "--dest-tls-verify=false",
            "--dest-authfile", os.path.join(authdir, "no-auth.json"), "oci:%s:%s" % (layout, tag), ref]
    r = subprocess.run(host.cmd(argv), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise B.BenchError("skopeo copy failed: %s" % r.stderr.strip())


def served(logpath):
    """What the registry's log says it served: {"blob_gets", "blob_bytes", "by_addr":
    {remote ip: bytes}, "manifest_gets", "head_blobs"}."""
    out = {"blob_gets": 0, "blob_bytes": 0, "by_addr": {}, "manifest_gets": 0, "blob_heads": 0}
    if not os.path.exists(logpath):
        return out
    with open(logpath, errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            method, uri = e.get("http.request.method"), e.get("http.request.uri")
            if not uri or "http.response.status" not in e:
                continue
            path = uri.split("?", 1)[0]
            status = int(e.get("http.response.status") or 0)
            if "/blobs/" in path and method == "HEAD":
                out["blob_heads"] += 1
            elif "/blobs/" in path and method == "GET" and 200 <= status < 300:
                written = int(e.get("http.response.written") or 0)
                addr = (e.get("http.request.remoteaddr") or "?").rsplit(":", 1)[0]
                out["blob_gets"] += 1
                out["blob_bytes"] += written
                out["by_addr"][addr] = out["by_addr"].get(addr, 0) + written
            elif "/manifests/" in path and method == "GET":
                out["manifest_gets"] += 1
    return out
