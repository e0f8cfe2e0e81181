"""Other hosts for tests: network namespaces joined to this one by veth links.

    def test_x(network_host):
        host = network_host()                    # namespace + veth + forwarders
        host.url("postgres://postgres@127.0.0.1:5432/db")  -> the same service seen from the host
        host.prefix                              # ["ip", "netns", "exec", name]: run a command there

Each host is a namespace `hemst<pid>x<n>` with one veth pair on a link-local /30 of
169.254.213.0/24 (the root side .4n+1, the host side .4n+2) and no route beyond it: the host
reaches nothing but the services this test forwards. PostgreSQL, Redis and Mosquitto listen on
127.0.0.1 only, so for each forwarded port a `socat` in the root namespace listens on the root
side of the link and connects to 127.0.0.1. Needs root (CAP_NET_ADMIN) and socat; without them the
test fails with the reason. Everything is removed on teardown, also when the test fails, and
namespaces left by a test run that was killed are removed at the next start.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

SUBNET = ipaddress.ip_network("169.254.213.0/24")
LOCK = Path("/tmp/hems-test-netns.lock")
NAME = re.compile(r"^hemst(\d+)x(\d+)$")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_namespaces() -> None:
    """Namespaces (and their links) of earlier test runs whose process is gone."""
    listing = _ip("netns", "list", check=False).stdout.split()
    for name in listing:
        m = NAME.match(name)
        if m and not _alive(int(m.group(1))):
            _ip("link", "del", f"hv{m.group(1)[-6:]}x{m.group(2)}", check=False)
            _ip("netns", "del", name, check=False)


class NetworkHost:
    """One namespace with its veth link and its port forwarders."""

    def __init__(self, index: int):
        self.index = index
        self.name = f"hemst{os.getpid()}x{index}"
        self.root_if = f"hv{str(os.getpid())[-6:]}x{index}"  # <= 15 characters
        self.host_if = "eth0"
        self.root_addr = self.host_addr = ""
        self.forwarders: dict[int, subprocess.Popen] = {}
        self.created = False

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def create(self) -> "NetworkHost":
        if shutil.which("socat") is None:
            pytest.fail("socat is not installed: the other-hosts test forwards services with it "
                        "(`make test` installs it with apt-get; or apt-get install socat)")
        with open(LOCK, "w") as lock:  # pick a free /30 atomically among concurrent test runs
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = set(re.findall(r"inet (169\.254\.213\.\d+)/", _ip("-o", "addr", "show", check=False).stdout))
            for net in SUBNET.subnets(new_prefix=30):
                root, host = str(net[1]), str(net[2])
                if root not in used:
                    break
            else:
                pytest.fail(f"no free /30 left in {SUBNET} for another test host")
            result = _ip("netns", "add", self.name, check=False)
            if result.returncode != 0:
                pytest.fail(f"cannot create a network namespace (needs root / CAP_NET_ADMIN): {result.stderr.strip()}")
            self.created = True
            self.root_addr, self.host_addr = root, host
            for args in (
                ["link", "add", self.root_if, "type", "veth", "peer", "name", self.host_if, "netns", self.name],
                ["addr", "add", f"{root}/30", "dev", self.root_if],
                ["link", "set", self.root_if, "up"],
                ["-n", self.name, "addr", "add", f"{host}/30", "dev", self.host_if],
                ["-n", self.name, "link", "set", self.host_if, "up"],
                ["-n", self.name, "link", "set", "lo", "up"],
            ):
                result = _ip(*args, check=False)
                if result.returncode != 0:
                    pytest.fail(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
        return self

    def forward(self, port: int) -> None:
        """Make 127.0.0.1:`port` of this namespace's parent reachable from the host at root_addr:`port`."""
        if port in self.forwarders:
            return
        proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind={self.root_addr},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.forwarders[port] = proc
        from tests.plugins.mqtt import wait_for

        wait_for(lambda: self.reaches(self.root_addr, port) or proc.poll() is not None, 10,
                 f"socat listening on {self.root_addr}:{port}")
        if proc.poll() is not None:
            pytest.fail(f"socat on {self.root_addr}:{port} exited: {proc.stderr.read().decode()[-500:]}")

    def reaches(self, host: str, port: int) -> bool:
        """Whether a TCP connection from inside the namespace to host:port succeeds."""
        probe = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()\n"
                 "except OSError:\n sys.exit(1)")
        import sys

        return subprocess.run([*self.prefix, sys.executable, "-c", probe, host, str(port)],
                              capture_output=True).returncode == 0

    def url(self, url: str) -> str:
        """`url` (a service on 127.0.0.1) as this host reaches it: over the link, port forwarded."""
        parts = urlsplit(url)
        port = parts.port or {"postgres": 5432, "redis": 6379, "mqtt": 1883}[parts.scheme]
        self.forward(port)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit((parts.scheme, f"{auth}{self.root_addr}:{port}", parts.path, parts.query, parts.fragment))

    def destroy(self) -> None:
        for proc in self.forwarders.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        self.forwarders.clear()
        if self.created:
            _ip("link", "del", self.root_if, check=False)
            _ip("netns", "del", self.name, check=False)
            self.created = False


@pytest.fixture
def network_host(request):
    """Factory: `network_host()` -> a new NetworkHost; all are removed on teardown (workers first:
    the test's own finalizers run before this one when the host was created after them)."""
    remove_stale_namespaces()
    hosts: list[NetworkHost] = []

    def create() -> NetworkHost:
        host = NetworkHost(len(hosts))
        hosts.append(host)
        return host.create()

    def finish() -> None:
        for host in hosts:
            host.destroy()

    request.addfinalizer(finish)
    return create
