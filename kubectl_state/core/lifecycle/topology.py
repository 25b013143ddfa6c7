"""What the lifecycle planner reads: the topology the inventory asks for and what is running now.

The desired side comes from the inventory groups (etcd, control_plane, api_endpoint, and the
etcd_remove / control_plane_remove / api_endpoint_remove groups of hosts being taken out), with
each host's member name, peer URL and API address as the roles compute them. The observed side
is the etcd member list with each member's health (kubectl_state.core.etcd.members.cluster_state)
and the backend servers of the API endpoint (and of the endpoint being moved away from).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.etcd.quorum import MemberView


@dataclass(frozen=True)
class EtcdHost:
    """One etcd member as the inventory wants it."""

    name: str
    peer_url: str
    client_url: str = ""


@dataclass(frozen=True)
class ApiServer:
    """One API server replica: its name in the endpoint's backend and its HOST:PORT."""

    name: str
    address: str


@dataclass(frozen=True)
class Topology:
    """The control plane the inventory asks for, and the hosts it asks to take out."""

    etcd: tuple[EtcdHost, ...]
    control_plane: tuple[ApiServer, ...]
    endpoint: str
    etcd_remove: tuple[EtcdHost, ...] = ()
    control_plane_remove: tuple[ApiServer, ...] = ()
    #: The host the API endpoint moves away from ("" when it stays on `endpoint`).
    endpoint_remove: str = ""

    def __post_init__(self) -> None:
        _unique("etcd", [h.name for h in self.etcd + self.etcd_remove])
        _unique("etcd peer URL", [h.peer_url for h in self.etcd + self.etcd_remove])
        _unique("control_plane", [s.name for s in self.control_plane + self.control_plane_remove])
        if not self.endpoint:
            raise InvalidInputError("the inventory needs one api_endpoint host")
        if self.endpoint_remove == self.endpoint:
            raise InvalidInputError(
                f"api_endpoint {self.endpoint} is listed twice (a host is either kept or removed, not both)"
            )

    @property
    def endpoint_moves(self) -> bool:
        return bool(self.endpoint_remove)

    def etcd_host(self, name: str) -> EtcdHost | None:
        return next((h for h in self.etcd + self.etcd_remove if h.name == name), None)

    def client_urls(self) -> list[str]:
        """Every client URL the inventory knows, wanted members first."""
        return [h.client_url for h in self.etcd + self.etcd_remove if h.client_url]


def _unique(what: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not name:
            raise InvalidInputError(f"an {what} entry has an empty name")
        if name in seen:
            raise InvalidInputError(
                f"{what} {name} is listed twice (a host is either kept or removed, not both)"
            )
        seen.add(name)


@dataclass(frozen=True)
class ObservedMember:
    """One etcd member as the cluster lists it, with what a probe found."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    is_learner: bool
    started: bool
    healthy: bool
    is_leader: bool = False
    #: The server version its status reports ("3.5.21"), None when it did not answer.
    version: str | None = None
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.name or 'unstarted'} ({self.id:x})"

    def view(self) -> MemberView:
        """The member as the quorum rules (core.etcd.quorum) see it."""
        return MemberView(id=self.id, name=self.name or "", is_learner=self.is_learner, healthy=self.healthy)


@dataclass(frozen=True)
class Observed:
    """What runs now. `members` is empty when no etcd cluster answered."""

    members: tuple[ObservedMember, ...] = ()
    #: The endpoint's backend servers: name -> HOST:PORT.
    backends: Mapping[str, str] = field(default_factory=dict)
    endpoint_running: bool = False
    #: The same two for the endpoint being moved away from (Topology.endpoint_remove).
    leaving_backends: Mapping[str, str] = field(default_factory=dict)
    leaving_endpoint_running: bool = False

    @property
    def cluster_exists(self) -> bool:
        return bool(self.members)


def etcd_hosts(entries: Iterable[Mapping[str, Any]], what: str) -> tuple[EtcdHost, ...]:
    """EtcdHosts from dicts with name, peer_url and client_url (the module's options)."""
    hosts = []
    for entry in entries:
        name, peer = str(entry.get("name") or ""), str(entry.get("peer_url") or "")
        if not name or not peer:
            raise InvalidInputError(f"each {what} host needs a name and a peer_url, not {dict(entry)!r}")
        hosts.append(EtcdHost(name=name, peer_url=peer, client_url=str(entry.get("client_url") or "")))
    return tuple(hosts)


def api_servers(entries: Iterable[Mapping[str, Any]], what: str) -> tuple[ApiServer, ...]:
    """ApiServers from dicts with name and address."""
    servers = []
    for entry in entries:
        name, address = str(entry.get("name") or ""), str(entry.get("address") or "")
        if not name or not address:
            raise InvalidInputError(f"each {what} host needs a name and an address, not {dict(entry)!r}")
        servers.append(ApiServer(name=name, address=address))
    return tuple(servers)
