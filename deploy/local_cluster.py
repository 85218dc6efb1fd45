"""A real multi-process Squeezer deployment on one machine: ``deploy/local-cluster up|down``.

What ``up`` starts, each a process of its own, sharing nothing but the network:

- PostgreSQL from Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``), in its
  own data directory on its own port (run as the ``postgres`` user when we are root);
- moto's standalone S3 server (the one the storage tests use) with one bucket;
- 2 ``squeezer api`` processes on two ports and 3 ``squeezer worker`` processes,
  configured by environment variables only (``SQUEEZER_DATABASE_URL``,
  ``SQUEEZER_STORAGE_URL`` + ``SQUEEZER_S3_ENDPOINT``, a shared ``SQUEEZER_SECRET_KEY``),
  each with its own data and temporary directory, so nothing works by the accident of a
  shared file system;
- when Debian's ``haproxy`` is installed (``--proxy auto``, the default), a reverse proxy
  in front of the API processes: round robin, health checks on ``/healthz``, a request
  whose connection to one API process fails is sent to the other.  Clients and the
  ``SQUEEZER_PUBLIC_URL`` of every process use the proxy's address.

It prints one ``api: URL`` line per API process, ``proxy: URL`` when there is a proxy,
and ``key: sqz_…`` (an admin key), and
remembers what it started in ``<dir>/cluster.json``; ``down`` stops all of it (SIGTERM,
then SIGKILL after a grace period) and removes the directory.  ``status`` says what runs.

    deploy/local-cluster up [--dir DIR] [--apis 2] [--workers 3] [--proxy auto|yes|no]
    deploy/local-cluster add-worker [--dir DIR] [--count 1]   # more workers, same settings
    deploy/local-cluster restart NAME [--dir DIR]             # e.g. after kill -9 of api1
    deploy/local-cluster down [--dir DIR] [--keep]

The load test and the fault runs (bench/load.py, bench/chaos.py) drive it.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("SQUEEZER_CLUSTER_DIR", "/tmp/squeezer-local-cluster"))
BUCKET = "squeezer"
READY_SECONDS = 120.0
STOP_SECONDS = 45.0  # > SQUEEZER_SHUTDOWN_GRACE_SECONDS (30 s): jobs in flight may finish

#: haproxy in front of the API processes, as docs/deploy.md recommends: timeouts longer than
#: the service's longest wait (sync 30 s, long polls 60 s), health checks on /healthz, and a
#: request whose connection fails (the API process is gone) sent to the other one.  Only
#: connection failures are retried: a request an API process received is never sent twice
#: by the proxy (a client's Idempotency-Key covers its own retries).
HAPROXY_CONFIG = """\
global
    maxconn 4000
defaults
    mode http
    option forwardfor
    option http-server-close
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout http-request 10s
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend squeezer
    bind 127.0.0.1:{port}
    default_backend apis
backend apis
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise SystemExit("local-cluster: Debian's PostgreSQL is not installed "
                         "(apt-get install -y postgresql)")
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def _traversable(path: Path) -> None:
    """Let the ``postgres`` user reach its directories under ours (search permission only,
    on the directories between, e.g. a private temporary directory; never a listing)."""
    if os.geteuid() != 0:
        return
    for d in [path, *path.parents]:
        mode = d.stat().st_mode
        if d == d.parent or mode & 0o1000:  # the root, or a shared sticky directory (/tmp)
            break
        if not mode & 0o001 and d.stat().st_uid == 0:
            d.chmod(mode | 0o001)


def _wait_http(url: str, seconds: float, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise SystemExit(f"local-cluster: {url} exited early:\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"local-cluster: {url} did not answer 200 within {seconds:g} s")


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_file = root / "cluster.json"
        self.state: dict = {"processes": []}

    # -- bookkeeping ------------------------------------------------------------------------

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2))

    def load(self) -> None:
        if self.state_file.is_file():
            self.state = json.loads(self.state_file.read_text())

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
              **extra: object) -> subprocess.Popen:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        entry = {"name": name, "pid": proc.pid, "log": str(log), "argv": argv, "cwd": str(cwd),
                 **extra}
        self.state["processes"] = [p for p in self.state["processes"] if p["name"] != name]
        self.state["processes"].append(entry)
        self.save()
        return proc

    # -- up ---------------------------------------------------------------------------------

    def up(self, apis: int, workers: int, proxy: str = "auto") -> None:
        if self.state_file.exists():
            raise SystemExit(f"local-cluster: {self.root} holds a cluster already "
                             "(deploy/local-cluster down first)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.save()
        try:
            db_url = self._postgres()
            s3 = self._s3()
            self._squeezer(db_url, s3, apis, workers, proxy)
        except BaseException:
            print("local-cluster: start failed; stopping what was started", file=sys.stderr)
            self.down(keep=True)
            raise

    def _postgres(self) -> str:
        bindir = pg_bin()
        data, sock = self.root / "pg" / "data", self.root / "pg" / "run"
        for d in (data.parent, data, sock):
            d.mkdir(parents=True, exist_ok=True)
            _chown_postgres(d)
        data.chmod(0o700)
        _traversable(data.parent)
        port = free_port()
        made = subprocess.run([*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-U",
                               "squeezer", "--auth=trust", "-E", "UTF8", "--no-sync"],
                              check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if made.returncode:
            raise SystemExit(f"local-cluster: initdb failed: {made.stderr.strip()}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{sock}'\nmax_connections = 200\n"
                       "shared_buffers = 128MB\n")
        log = self.root / "logs" / "postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        _chown_postgres(log)
        subprocess.run([*_as_postgres(), str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                        "-w", "-t", "60", "start"], check=True, stdout=subprocess.DEVNULL)
        self.state["postgres"] = {"bindir": str(bindir), "data": str(data), "port": port}
        self.save()
        subprocess.run([*_as_postgres(), str(bindir / "createdb"), "-h", "127.0.0.1", "-p",
                        str(port), "-U", "squeezer", "squeezer"], check=True)
        return f"postgresql://squeezer@127.0.0.1:{port}/squeezer"

    def _s3(self) -> str:
        port = free_port()
        moto = Path(sys.executable).parent / "moto_server"
        argv = [str(moto) if moto.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)]
        proc = self.spawn("s3", argv, dict(os.environ), self.root, kind="s3", port=port)
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(endpoint + "/moto-api/", 60, proc, self.root / "logs" / "s3.log")
        request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.state["s3"] = {"endpoint": endpoint, "bucket": BUCKET}
        self.save()
        return endpoint

    def _env(self, name: str, db_url: str, s3: str, public_url: str) -> tuple[dict, Path]:
        home = self.root / name
        tmp = home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SQUEEZER_", "AWS_", "PG"))}
        env.update({
            "SQUEEZER_DATABASE_URL": db_url,
            "SQUEEZER_STORAGE_URL": f"s3://{BUCKET}/blobs",
            "SQUEEZER_S3_ENDPOINT": s3,
            "AWS_ACCESS_KEY_ID": "local-cluster", "AWS_SECRET_ACCESS_KEY": "local-cluster",
            "AWS_REGION": "us-east-1",
            "SQUEEZER_SECRET_KEY": self.state["secret"],
            "SQUEEZER_PUBLIC_URL": public_url,
            "SQUEEZER_DATA_DIR": str(home / "data"),
            "TMPDIR": str(tmp),
            # loopback receivers and sources are the load test's; a real deployment keeps
            # the defaults (docs/security.md)
            "SQUEEZER_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
            "SQUEEZER_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        })
        for knob in ("SQUEEZER_RATE_LIMIT", "SQUEEZER_MAX_UPLOAD_BYTES", "SQUEEZER_STALLED_SECONDS",
                     "SQUEEZER_SWEEP_SECONDS", "SQUEEZER_SHUTDOWN_GRACE_SECONDS"):
            if knob in os.environ:
                env[knob] = os.environ[knob]
        return env, home

    def _squeezer(self, db_url: str, s3: str, apis: int, workers: int, proxy: str) -> None:
        self.state["secret"] = secrets.token_urlsafe(32)
        ports = [free_port() for _ in range(apis)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        self.state["apis"] = urls
        haproxy = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if proxy == "yes" and haproxy is None:
            raise SystemExit("local-cluster: --proxy yes needs Debian's haproxy "
                             "(apt-get install -y haproxy)")
        if proxy != "no" and haproxy is not None and apis:
            self.state["proxy"] = f"http://127.0.0.1:{free_port()}"
        squeezer = [sys.executable, "-m", "squeezer"]
        started = []
        for i, (port, url) in enumerate(zip(ports, urls, strict=True), start=1):
            env, home = self._env(f"api{i}", db_url, s3, self.state.get("proxy") or url)
            argv = [*squeezer, "api", "--port", str(port), "--no-access-log",
                    "--log-level", "warning"]
            if "proxy" in self.state:
                argv += ["--proxy-headers", "127.0.0.1"]
            proc = self.spawn(f"api{i}", argv, env, home, kind="api", url=url)
            started.append((proc, url, f"api{i}"))
            if i == 1:  # the first one migrates the database and makes the first key
                _wait_http(url + "/healthz", READY_SECONDS, proc, self.root / "logs" / "api1.log")
        self.state["db_url"], self.state["s3_endpoint"] = db_url, s3
        self.add_workers(workers)
        for proc, url, name in started:
            _wait_http(url + "/healthz", READY_SECONDS, proc, self.root / "logs" / f"{name}.log")
        if "proxy" in self.state:
            proc = self._haproxy(str(haproxy), urls)
            _wait_http(self.state["proxy"] + "/healthz", READY_SECONDS, proc,
                       self.root / "logs" / "proxy.log")
        if workers:
            _wait_http(urls[0] + "/readyz", READY_SECONDS)  # a worker heartbeats
        log = (self.root / "logs" / "api1.log").read_text()
        match = re.search(r"(sqz_[A-Za-z0-9_-]{43})", log)
        if match is None:
            raise SystemExit("local-cluster: no first-start key in api1's log")
        self.state["key"] = match.group(1)
        self.save()

    def _haproxy(self, binary: str, urls: list[str]) -> subprocess.Popen:
        """haproxy in the foreground (``-db``) with the configuration of docs/deploy.md."""
        port = self.state["proxy"].rsplit(":", 1)[1]
        servers = "\n".join(
            f"    server api{i} {url.removeprefix('http://')} check inter 1s fall 2 rise 1"
            for i, url in enumerate(urls, start=1))
        config = self.root / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
        return self.spawn("proxy", [binary, "-db", "-f", str(config)], dict(os.environ),
                          self.root, kind="proxy", url=self.state["proxy"])

    def add_workers(self, count: int) -> None:
        """Start ``count`` more worker processes (each with its own directories)."""
        have = sum(p.get("kind") == "worker" for p in self.state["processes"])
        for i in range(have + 1, have + count + 1):
            env, home = self._env(f"worker{i}", self.state["db_url"], self.state["s3_endpoint"],
                                  self.state.get("proxy") or self.state["apis"][0])
            self.spawn(f"worker{i}", [sys.executable, "-m", "squeezer", "worker",
                                      "--log-level", "warning"], env, home, kind="worker")

    def restart(self, name: str) -> None:
        """Start process ``name`` again (killed by a fault test, say) with its settings."""
        entry = next((p for p in self.state["processes"] if p["name"] == name), None)
        if entry is None:
            raise SystemExit(f"local-cluster: no process named {name!r}")
        if _alive(entry["pid"]):
            _signal(entry["pid"], signal.SIGKILL, group=True)
        if entry.get("kind") in ("s3", "proxy"):
            env = dict(os.environ)
        else:
            env, _ = self._env(name, self.state["db_url"], self.state["s3_endpoint"],
                               self.state.get("proxy") or entry.get("url")
                               or self.state["apis"][0])
        extra = {k: v for k, v in entry.items()
                 if k not in ("name", "pid", "log", "argv", "cwd")}
        self.spawn(name, entry["argv"], env, Path(entry["cwd"]), **extra)

    def report(self) -> None:
        for url in self.state.get("apis", []):
            print(f"api: {url}")
        if "proxy" in self.state:
            print(f"proxy: {self.state['proxy']}")
        print(f"key: {self.state['key']}")
        print(f"dir: {self.root}")

    # -- down -------------------------------------------------------------------------------

    def down(self, keep: bool = False) -> None:
        procs = self.state.get("processes", [])
        order = {"proxy": 0, "api": 1, "worker": 2, "s3": 3}
        for group in sorted({order.get(p.get("kind", ""), 4) for p in procs}):
            members = [p for p in procs if order.get(p.get("kind", ""), 4) == group]
            for p in members:
                _signal(p["pid"], signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            while time.monotonic() < deadline and any(_alive(p["pid"]) for p in members):
                time.sleep(0.2)
            for p in members:
                if _alive(p["pid"]):
                    _signal(p["pid"], signal.SIGKILL, group=True)
        pg = self.state.get("postgres")
        if pg:
            subprocess.run([*_as_postgres(), str(Path(pg["bindir"]) / "pg_ctl"), "-D", pg["data"],
                            "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                self.state_file.unlink()

    def status(self) -> int:
        running = 0
        for p in self.state.get("processes", []):
            alive = _alive(p["pid"])
            running += alive
            print(f"{p['name']:<10} pid {p['pid']:<8} {'running' if alive else 'stopped'}")
        return 0 if running else 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (its parent, `up`, is gone, so it is reaped by init soon) counts as stopped
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        if stat.read().rpartition(")")[2].split()[0] == "Z":
            return False
    return True


def _signal(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)  # the process and its children (forkserver, engine children)
        else:
            os.kill(pid, sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/local-cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "add-worker", "restart"])
    parser.add_argument("name", nargs="?", help="restart: the process (api1, worker2, …)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--proxy", choices=["auto", "yes", "no"], default="auto",
                        help="haproxy in front of the APIs (auto: when it is installed)")
    parser.add_argument("--count", type=int, default=1, help="add-worker: how many")
    parser.add_argument("--keep", action="store_true", help="down: keep the directory (logs)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.dir.absolute())
    if args.action == "up":
        cluster.up(args.apis, args.workers, args.proxy)
        cluster.report()
        return 0
    cluster.load()
    if args.action == "status":
        return cluster.status()
    if args.action == "restart":
        cluster.restart(args.name)
        return 0
    if args.action == "add-worker":
        cluster.add_workers(args.count)
        return cluster.status()
    cluster.down(keep=args.keep)
    print(f"local-cluster: stopped ({args.dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
