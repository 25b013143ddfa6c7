"""What runs now, gathered for the planner: etcd members with their health, the endpoint's backends."""

from __future__ import annotations

import os

from kubectl_state.core.endpoint.haproxy import HAProxyError, RuntimeAPI, config_servers
from kubectl_state.core.errors import ConnectionFailed
from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.members import PROBE_TIMEOUT, MemberState, cluster_state
from kubectl_state.core.lifecycle.topology import Observed, ObservedMember


def observed_member(state: MemberState) -> ObservedMember:
    return ObservedMember(
        id=state.id,
        name=state.name,
        peer_urls=tuple(state.member.peer_urls),
        is_learner=state.is_learner,
        started=state.started,
        healthy=state.healthy,
        is_leader=state.is_leader,
        version=state.status.version if state.status else None,
        reason=state.reason,
    )


def etcd_members(client: EtcdClient, *, timeout: float = PROBE_TIMEOUT) -> tuple[ObservedMember, ...]:
    """Every member with its health; () when no endpoint answers (there is no cluster yet, or none left)."""
    try:
        states = cluster_state(client, timeout=timeout)
    except ConnectionFailed:
        return ()
    return tuple(observed_member(s) for s in states)


def endpoint_backends(socket_path: str, backend: str) -> dict[str, str] | None:
    """The backend's servers (name -> HOST:PORT) through HAProxy's runtime API; None when it is not running.

    A socket file left behind by a stopped HAProxy refuses connections: that is "not running" too.
    """
    if not socket_path or not os.path.exists(socket_path):
        return None
    try:
        servers = RuntimeAPI(socket_path, timeout=5.0).servers(backend)
    except ConnectionFailed:
        return None
    except HAProxyError:
        # It answers but has no such backend: running, with no servers.
        return {}
    return {s.name: s.address for s in servers}


def config_backends(config_text: str, backend: str) -> dict[str, str]:
    """The backend's servers (name -> HOST:PORT) as an endpoint's configuration file lists them.

    For the endpoint being moved away from: its runtime API is a UNIX socket on another host than
    the one the planner runs on, and api_endpoint_member keeps the file in step with the runtime.
    An empty text (no file) has no servers.
    """
    if not config_text.strip():
        return {}
    return {name: line.split()[2] for name, line in config_servers(config_text, backend).items()
            if len(line.split()) > 2}


def observe(client: EtcdClient, socket_path: str, backend: str, *, leaving_config: str = "",
            leaving_running: bool = False) -> Observed:
    """What runs now; `leaving_*` describe the endpoint being moved away from, read on its host."""
    backends = endpoint_backends(socket_path, backend)
    return Observed(members=etcd_members(client), backends=backends or {}, endpoint_running=backends is not None,
                    leaving_backends=config_backends(leaving_config, backend) if leaving_running else {},
                    leaving_endpoint_running=leaving_running)
