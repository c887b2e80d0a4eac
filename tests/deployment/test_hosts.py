"""Several hosts: PostgreSQL, two replicas of `serve`, nginx balancing them
(deploy/nginx/purgecache.conf, TLS) and two workers running `purgecache agent run`, each on a
"host" of its own (a network namespace on one bridge, tests/deployment/netns.py), with the
test's own requests made from an operator host. Shown: purges through the load balancer, a
purge on one replica visible on the other within a second, both workers deleting their stale
cache instances, and the loss of a replica (killed) survived by the balancer and the agents.

Its PostgreSQL is a private cluster listening on the database host's address (the machine's
shared one listens on 127.0.0.1 only, which no other host can reach)."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from test_outage import PrivatePostgres

from conftest import ADMIN, CLIENTS_TOML, LiveServer, log_records, wait_until_serving
from deployment.netns import SUBNET, Network
from deployment.nginx import Nginx, site_config
from deployment.tools import installed_purgecache, require_tool, throwaway_certificate
from hawk_signing import HawkAuth

AUTH = HawkAuth(*ADMIN)
POOL = "proj-a/linux"
HOSTS = {"db": 2, "replica-a": 11, "replica-b": 12, "lb": 20, "worker-1": 31, "worker-2": 32,
         "operator": 40}  # fmt: skip
PORT = 8080


class HostedPostgres(PrivatePostgres):
    """A private cluster run on host `role`, listening on that host's address only and
    trusting the hosts of the network (as a pg_hba.conf line of a real deployment would)."""

    def __init__(self, network: Network, role: str) -> None:
        require_tool("initdb", under=tuple(map(str, Path("/usr/lib/postgresql").glob("*/bin"))))
        self.network, self.address = network, network.address(role)
        self.run_in = network.run_in(role)
        super().__init__()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.address}:{self.port}/postgres"

    def start(self) -> None:
        hba = self.dir / "data" / "pg_hba.conf"
        trust = f"host all all {SUBNET}.0/24 trust\n"
        if trust not in hba.read_text():
            with hba.open("a") as file:
                file.write(trust)
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={self.address}"
        subprocess.run(
            [*self.run_in, "runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"),
             "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"),
             "-w", "start"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip


@dataclass
class HostedServer(LiveServer):
    """`serve` on a host of the network, reached at that host's address."""

    address: str = ""

    @property
    def root_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def end(self) -> None:
        if self.process.poll() is None:
            self.kill_all()


@dataclass
class Agent:
    """`purgecache agent run` on a worker host, with its cache root and log."""

    role: str
    cache_root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def syncs(self) -> int:
        return self.log_text().count(f"sync {POOL}:")

    def synced_since(self, syncs: int) -> bool:
        """Whether at least three syncs succeeded after the first `syncs`."""
        return self.syncs() >= syncs + 3

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Deployment:
    network: Network
    replicas: list[HostedServer]
    nginx: Nginx
    public: str  # the root URL everyone uses: the load balancer's
    cert: Path  # the balancer's certificate: the CA file of its clients
    agents: list[Agent]
    agent_env: dict[str, str]


def start_replica(network: Network, role: str, db: str, public: str, folder: Path) -> HostedServer:
    """`serve` on host `role`, listening on its address, on the shared database, answers
    cached for 300 s (so only a notification can make a purge visible on the other one)."""
    folder.mkdir(parents=True)
    clients = folder / "clients.toml"  # each host has its own file
    clients.write_text(CLIENTS_TOML)
    args = [*network.run_in(role), sys.executable, "-m", "purgecache", "serve",
            "--host", network.address(role), "--port", str(PORT), "--data-dir", str(folder),
            "--clients", str(clients), "--db", db, "--trust-proxy", "--root-url", public,
            "--cache-time", "300s"]  # fmt: skip
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    server = HostedServer(PORT, folder, process, log_path, args, "postgres", network.address(role))
    with network.inside("operator"):
        wait_until_serving(server, timeout=30)
    return server


def start_agent(network: Network, role: str, env: dict[str, str], folder: Path) -> Agent:
    """`agent run` on worker host `role`, syncing every second through the load balancer."""
    folder.mkdir(parents=True, exist_ok=True)
    cache_root, log_path = folder / role, folder / f"{role}.log"
    args = [*network.run_in(role), installed_purgecache(), "agent", "run", "--pool", POOL,
            "--cache-root", str(cache_root), "--interval", "1s", "--timeout", "3s"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
    return Agent(role, cache_root, process, log_path)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """The whole network, taken down in reverse order however the test ends."""
    with ExitStack() as stack:
        network = Network(HOSTS)
        stack.callback(network.close)
        postgres = HostedPostgres(network, "db")
        stack.callback(postgres.remove)
        lb = network.address("lb")
        public = f"https://{lb}"
        replicas = []
        for role in ("replica-a", "replica-b"):
            replica = start_replica(network, role, postgres.url, public, tmp_path / role)
            stack.callback(replica.end)
            replicas.append(replica)
        cert, key = throwaway_certificate(tmp_path, lb)
        upstreams = [f"{replica.address}:{PORT}" for replica in replicas]
        site = site_config(f"{lb}:443", upstreams, cert, key)
        nginx = Nginx(tmp_path / "nginx", site, netns=network.netns("lb"))
        stack.callback(nginx.stop)
        with network.inside("operator"):
            nginx.wait_listening(lb, 443)
        env = {"PATH": "/usr/bin:/bin", "TASKCLUSTER_ROOT_URL": public,
               "TASKCLUSTER_CLIENT_ID": ADMIN[0], "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1],
               "SSL_CERT_FILE": str(cert)}  # fmt: skip
        agents = []
        for role in ("worker-1", "worker-2"):
            agent = start_agent(network, role, env, tmp_path / "agents")
            stack.callback(agent.stop)
            agents.append(agent)
        yield Deployment(network, replicas, nginx, public, cert, agents, env)


def cache_names(client: httpx.Client, root_url: str) -> list[str]:
    answer = client.get(f"{root_url}/api/purge-cache/v1/purge-cache/{POOL.replace('/', '%2F')}")
    assert answer.status_code == 200, answer.text
    return [request["cacheName"] for request in answer.json()["requests"]]


def purge(client: httpx.Client, root_url: str, cache_name: str) -> int:
    url = f"{root_url}/api/purge-cache/v1/purge-cache/{POOL.replace('/', '%2F')}"
    return client.post(url, json={"cacheName": cache_name}).status_code


def wait_for(what: str, done: Callable[[], bool], limit: float) -> float:
    """Seconds until `done()` holds (polled every 10 ms), failing after `limit`."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < limit, f"{what}: not within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - started


def seconds_until_listed(client: httpx.Client, server: HostedServer, cache_name: str) -> float:
    """Seconds until `server` lists `cache_name` for POOL, failing after a second."""
    return wait_for(
        f"{cache_name} on {server.address}",
        lambda: cache_name in cache_names(client, server.root_url),
        1.0,
    )


def wait_until_deleted(data: Path) -> None:
    """Until a worker's agent deleted the instance of `data` (it syncs every second)."""
    wait_for(f"deletion of {data}", lambda: not data.exists(), 10)


def mount_and_release(deployment: Deployment, agent: Agent, cache_name: str) -> Path:
    """A task on the worker host uses cache `cache_name` and gives it back; its directory."""
    command = [*deployment.network.run_in(agent.role), installed_purgecache(), "agent"]
    root = ["--cache-root", str(agent.cache_root)]
    mounted = subprocess.run(
        [*command, "mount", cache_name, *root],
        capture_output=True, text=True, check=True, timeout=30, env=deployment.agent_env,
    )  # fmt: skip
    data = Path(mounted.stdout.strip().splitlines()[-1])
    subprocess.run([*command, "release", str(data), *root], capture_output=True, check=True,
                   timeout=30, env=deployment.agent_env)  # fmt: skip
    return data


def test_replicas_balancer_and_agents_on_separate_hosts(deployment: Deployment) -> None:
    """Through nginx on its own host, purges reach the replicas; a purge on one replica is
    visible on the other within a second; the agents of both worker hosts delete their
    instances made before it; killing a replica leaves the balancer serving every request and
    the agents syncing and deleting."""
    a, b = deployment.replicas
    public, agents = deployment.public, deployment.agents
    checkouts = [mount_and_release(deployment, agent, "checkouts") for agent in agents]
    with deployment.network.inside("operator"), ExitStack() as stack:
        direct = stack.enter_context(httpx.Client(auth=AUTH, timeout=10))
        verify = ssl.create_default_context(cafile=deployment.cert)
        balanced = stack.enter_context(httpx.Client(auth=AUTH, timeout=10, verify=verify))
        assert cache_names(direct, b.root_url) == []  # cached on b for 300 s from now on
        assert purge(direct, a.root_url, "checkouts") == 204
        assert seconds_until_listed(direct, b, "checkouts") < 1.0
        assert cache_names(direct, a.root_url) == ["checkouts"]  # cached on a from now on
        assert purge(direct, b.root_url, "objdir") == 204
        assert seconds_until_listed(direct, a, "objdir") < 1.0

        for data in checkouts:  # both workers, through the balancer
            wait_until_deleted(data)
        statuses = [purge(balanced, public, f"lb-{n}") for n in range(6)]
        assert statuses == [204] * 6
        names = cache_names(balanced, public)
        assert {f"lb-{n}" for n in range(6)} <= set(names), names

        builds = [mount_and_release(deployment, agent, "builds") for agent in agents]
        a.kill_all()
        syncs = [agent.syncs() for agent in agents]
        statuses = [purge(balanced, public, "builds")]
        statuses += [purge(balanced, public, f"after-{n}") for n in range(10)]
        assert statuses == [204] * 11, (statuses, deployment.nginx.error_log())
        assert "after-9" in cache_names(balanced, public)
        for data in builds:
            wait_until_deleted(data)
        # It routed around the lost replica: nginx logged a failure talking to it (connection
        # refused, or reset/closed on a kept-alive connection, depending on the timing of the kill)
        lost = f'upstream: "http://{a.address}:{a.port}/'
        errors = [line for line in deployment.nginx.error_log().splitlines() if "[error]" in line]
        assert any(lost in line for line in errors), errors
        for agent, before in zip(agents, syncs, strict=True):
            wait_for(f"{agent.role} syncing", partial(agent.synced_since, before), 10)
            assert agent.process.poll() is None, agent.log_text()
            assert "caches kept" not in agent.log_text(), agent.log_text()  # no failed sync
    callers = {line["client_ip"] for live in (a, b) for line in log_records(live, "request")}
    workers = {deployment.network.address(agent.role) for agent in agents}
    assert workers <= callers  # the agents came through the balancer (X-Forwarded-For)
