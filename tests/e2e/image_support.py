"""Images built here, with no network: a busybox-static root filesystem packed with umoci into an OCI
layout, copied with skopeo into archives and into a local `docker-registry` (Debian's distribution
registry) on 127.0.0.1, optionally behind htpasswd auth. The registry is started on a free port
with a temporary config and stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), "")
APPLETS = ("sh", "httpd", "ls", "cat", "echo", "sleep", "id", "ps", "hostname", "wget", "true", "touch",
           "mkdir", "rm", "env", "dd", "head", "sync")


def tools_missing() -> str:
    for t in ("umoci", "skopeo", "runc", "docker-registry", "htpasswd"):
        if shutil.which(t) is None:
            return f"{t} is not installed"
    return "" if BUSYBOX else "busybox-static is not installed"


def _run(*argv: str) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def _busybox_root(rootfs: Path) -> None:
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for a in APPLETS:
        link = rootfs / "bin" / a
        if not link.exists():
            link.symlink_to("busybox")
    (rootfs / "www").mkdir(exist_ok=True)
    (rootfs / "etc").mkdir(exist_ok=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nwww:x:33:\n")


def build_layout(work: Path) -> Path:
    """An OCI layout with three images:
      httpd     busybox httpd on :80 serving /www/index.html ("hello from a real image")
      multi     two layers: the second deletes /www/gone.txt (a whiteout) and adds /www/second.txt
      escape    one layer whose entry is `../escaped` (must be refused)
    """
    layout = work / "oci"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:httpd")
    bundle = work / "b-httpd"
    _run("umoci", "unpack", "--rootless", "--image", f"{layout}:httpd", str(bundle))
    _busybox_root(bundle / "rootfs")
    (bundle / "rootfs" / "www" / "index.html").write_text("hello from a real image\n")
    (bundle / "rootfs" / "www" / "gone.txt").write_text("deleted by the second layer\n")
    _run("umoci", "repack", "--image", f"{layout}:httpd", str(bundle))
    _run("umoci", "config", "--image", f"{layout}:httpd", "--config.entrypoint", "/bin/httpd",
         "--config.cmd", "-f", "--config.cmd", "-p", "--config.cmd", "80", "--config.cmd", "-h",
         "--config.cmd", "/www", "--config.env", "PATH=/bin", "--config.env", "GREETING=from-image",
         "--config.workingdir", "/www")
    # multi: a second layer on top of httpd
    _run("umoci", "tag", "--image", f"{layout}:httpd", "multi")
    mb = work / "b-multi"
    _run("umoci", "unpack", "--rootless", "--image", f"{layout}:multi", str(mb))
    (mb / "rootfs" / "www" / "gone.txt").unlink()
    (mb / "rootfs" / "www" / "second.txt").write_text("from the second layer\n")
    _run("umoci", "repack", "--image", f"{layout}:multi", str(mb))
    # escape: a hand-made layer with a ../ entry
    _run("umoci", "new", "--image", f"{layout}:escape")
    eb = work / "b-escape"
    _run("umoci", "unpack", "--rootless", "--image", f"{layout}:escape", str(eb))
    _busybox_root(eb / "rootfs")
    _run("umoci", "repack", "--image", f"{layout}:escape", str(eb))
    _run("umoci", "config", "--image", f"{layout}:escape", "--config.cmd", "/bin/sleep",
         "--config.cmd", "3600")
    _inject_escape_layer(layout, "escape")
    _run("umoci", "gc", "--layout", str(layout))
    return layout


def _inject_escape_layer(layout: Path, tag: str) -> None:
    """Append a layer holding `../escaped` to image `tag` (umoci would never write one)."""
    import gzip
    import hashlib
    import io
    import json

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        data = b"outside\n"
        ti = tarfile.TarInfo("../escaped")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    gz = gzip.compress(raw.getvalue())
    blobs = layout / "blobs" / "sha256"

    def put(b: bytes) -> str:
        h = hashlib.sha256(b).hexdigest()
        (blobs / h).write_bytes(b)
        return "sha256:" + h

    layer_digest = put(gz)
    index = json.loads((layout / "index.json").read_text())
    ref_key = "org.opencontainers.image.ref.name"
    entry = next(m for m in index["manifests"] if m["annotations"][ref_key] == tag)
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())
    config["rootfs"]["diff_ids"].append(diff_id)
    cfg_bytes = json.dumps(config).encode()
    manifest["config"] = {"mediaType": manifest["config"]["mediaType"], "digest": put(cfg_bytes),
                          "size": len(cfg_bytes)}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": layer_digest, "size": len(gz)})
    man_bytes = json.dumps(manifest).encode()
    entry["digest"] = put(man_bytes)
    entry["size"] = len(man_bytes)
    (layout / "index.json").write_text(json.dumps(index))


def oci_archive(layout: Path, tag: str, out: Path, name: str) -> Path:
    _run("skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"oci-archive:{out}:{name}")
    return out


def docker_archive(layout: Path, tag: str, out: Path, name: str) -> Path:
    _run("skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker-archive:{out}:{name}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    def __init__(self, work: Path, *, user: str = "", password: str = ""):
        self.work = work
        self.port = free_port()
        self.user, self.password = user, password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.user:
            htpasswd = self.work / "htpasswd"
            subprocess.run(["htpasswd", "-Bbc", str(htpasswd), self.user, self.password], check=True,
                           capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: podnet-test\n    path: {htpasswd}\n"
        cfg = self.work / "config.yml"
        cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                       f"    rootdirectory: {self.work / 'data'}\n  delete:\n    enabled: true\n"
                       f"http:\n  addr: {self.host}\n{auth}")
        log = open(self.work / "registry.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._log = log
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.work / "registry.log").read_text()[-500:]
                raise RuntimeError(f"docker-registry exited: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start listening")

    def auths(self) -> dict[str, object]:
        """A docker config.json `auths` map for this registry (what a dockerconfigjson Secret holds)."""
        import base64

        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {self.host: {"auth": token}}

    def authfile(self) -> Path:
        import json

        path = self.work / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": self.auths()}, f)
        return path

    def push(self, layout: Path, tag: str, dest: str) -> str:
        """Copy image `tag` of the layout to `<registry>/<dest>`; returns the manifest digest."""
        creds = ["--dest-authfile", str(self.authfile())] if self.user else []
        digest_file = self.work / "digest"
        _run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", *creds, "--digestfile", str(digest_file),
             f"oci:{layout}:{tag}", f"docker://{self.host}/{dest}")
        return digest_file.read_text().strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def registry(work: Path, **kw: str) -> Iterator[Registry]:
    r = Registry(work, **kw)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def unique_image(layout: Path, work: Path, tag: str) -> Path:
    """A copy of image httpd with one more layer whose content no other image has."""
    out = work / "oci"
    work.mkdir(parents=True, exist_ok=True)
    _run("skopeo", "copy", "--quiet", f"oci:{layout}:httpd", f"oci:{out}:{tag}")
    b = work / "b"
    _run("umoci", "unpack", "--rootless", "--image", f"{out}:{tag}", str(b))
    (b / "rootfs" / "www" / "unique.bin").write_bytes(os.urandom(64 * 1024))  # does not compress
    _run("umoci", "repack", "--image", f"{out}:{tag}", str(b))
    return out


@contextlib.contextmanager
def fault_server(mode: str) -> Iterator[int]:
    """A registry stand-in on 127.0.0.1 that answers every request 500 ("500"), or accepts connections
    and never answers ("hang"). Runs in a thread of the test; stopped on exit."""
    import http.server
    import threading

    if mode == "500":
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"errors":[{"code":"UNKNOWN","message":"internal trouble"}]}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield int(srv.server_address[1])
        finally:
            srv.shutdown()
            srv.server_close()
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections complete in the kernel's backlog and are never read
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()
