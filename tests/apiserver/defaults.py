"""What the server (and the controllers a real control plane runs) fills in by itself.

- per-kind defaults that kube-apiserver's defaulting functions apply (a few, the ones that
  show up in exports and diffs: Deployment and pod template defaults, Service defaults);
- Service clusterIPs, allocated as kube-apiserver 1.33 allocates them: one IPAddress object
  (`/registry/ipaddresses/<ip>`) per address, created in a transaction that only succeeds
  when the address is free, so replicas sharing an etcd never hand out one address twice;
- each new namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap (the
  serviceaccount and root-ca-cert-publisher controllers' work, done at once here);
- the cluster's bootstrap objects: the four system namespaces, the `kubernetes` Service,
  its Endpoints and EndpointSlice, the ServiceCIDR, and an APIService per group version.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import secrets
from typing import TYPE_CHECKING, Any

from .status import ApiStatusError, internal, invalid

if TYPE_CHECKING:
    from .handlers import Api, RequestContext

Obj = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

#: Kinds whose strategies track metadata.generation (bumped on every spec change).
GENERATION_KINDS = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "FlowSchema",
        "PriorityLevelConfiguration",
        "APIService",
        "ServiceCIDR",
    }
)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(base: str) -> str:
    """generateName's suffix: five characters from the alphabet kube-apiserver uses."""
    return base[:58] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


# --- defaulting -------------------------------------------------------------------------------


def _default_container(container: Obj) -> None:
    image = container.get("image", "")
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    container.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            _default_container(container)


def apply_defaults(obj: Obj) -> None:
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
        # stringData is write-only: merged into data (base64) and never stored.
        for key, value in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
    if not isinstance(spec, dict):
        return
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"):
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    if kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        )
    if kind == "StatefulSet":
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    if kind == "Pod":
        default_pod_spec(spec)
    if kind == "Service":
        stype = spec.setdefault("type", "ClusterIP")
        if stype != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


# --- Service clusterIP allocation --------------------------------------------------------------


class ClusterIPAllocator:
    """Hands out Service IPs by creating IPAddress objects in etcd (one key per address)."""

    def __init__(self, api: Api, cidr: str) -> None:
        self.api = api
        self.network = ipaddress.ip_network(cidr, strict=False)

    def first(self) -> str:
        """The `kubernetes` Service's address: the first host of the range."""
        return str(self.network.network_address + 1)

    def _ip_object(self, ip: str, namespace: str, name: str) -> Obj:
        family = "IPv4" if self.network.version == 4 else "IPv6"
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip,
                "labels": {
                    "ipaddress.kubernetes.io/ip-family": family,
                    "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
                },
            },
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": namespace, "name": name}},
        }

    def _try(self, ip: str, namespace: str, name: str) -> bool:
        info = self.api.builtin("networking.k8s.io", "v1", "ipaddresses")
        obj = self.api.new_object_fields(info, self._ip_object(ip, namespace, name), manager="kube-apiserver")
        return self.api.store.create(info.key(self.api.prefix, None, ip), obj) is not None

    def allocate(self, namespace: str, name: str, wanted: str | None, *, dry_run: bool) -> str:
        size = self.network.num_addresses
        if wanted:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                raise invalid(
                    "Service",
                    "",
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.clusterIPs[0]",
                            "message": f'Invalid value: "{wanted}": must be a valid IP address',
                        }
                    ],
                ) from None
            if address not in self.network:
                raise invalid(
                    "Service",
                    "",
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.clusterIPs[0]",
                            "message": f'Invalid value: "{wanted}": failed to allocate IP {wanted}: '
                            f"the provided IP ({wanted}) is not in the valid range. "
                            f"The range of valid IPs is {self.network}",
                        }
                    ],
                )
            if dry_run or self._try(wanted, namespace, name):
                return wanted
            raise invalid(
                "Service",
                "",
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.clusterIPs[0]",
                        "message": f'Invalid value: "{wanted}": failed to allocate IP {wanted}: '
                        "provided IP is already allocated",
                    }
                ],
            )
        # Random probing first (what kube-apiserver does); a full scan when the range is crowded.
        candidates = [2 + secrets.randbelow(max(size - 3, 1)) for _ in range(16)] if size > 4 else []
        for offset in candidates:
            ip = str(self.network.network_address + offset)
            if dry_run or self._try(ip, namespace, name):
                return ip
        for offset in range(2, size - 1):
            ip = str(self.network.network_address + offset)
            if self._try(ip, namespace, name):
                return ip
        raise internal("failed to allocate a serviceIP: range is full")

    def release(self, ip: str) -> None:
        if not ip or ip == "None":
            return
        info = self.api.builtin("networking.k8s.io", "v1", "ipaddresses")
        self.api.store.client.delete(info.key(self.api.prefix, None, ip))


def prepare_service(api: Api, ctx: RequestContext, obj: Obj, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    meta = obj["metadata"]
    if old is not None:
        # Allocated values survive an update that leaves them out (patchAllocatedValues).
        old_spec = old.get("spec") or {}
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if key in old_spec and not spec.get(key):
                spec[key] = copy.deepcopy(old_spec[key])
        if old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec.get("clusterIP"):
            raise invalid(
                "Service",
                "",
                meta["name"],
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.clusterIPs[0]",
                        "message": f'Invalid value: []string{{"{spec.get("clusterIP")}"}}: may not change once set',
                    }
                ],
            )
        for port, old_port in zip(spec.get("ports") or [], old_spec.get("ports") or [], strict=False):
            if "nodePort" in old_port and "nodePort" not in port and port.get("port") == old_port.get("port"):
                port["nodePort"] = old_port["nodePort"]
        obj.setdefault("status", copy.deepcopy(old.get("status") or {"loadBalancer": {}}))
        return
    obj["status"] = {"loadBalancer": {}}
    if spec.get("type") == "ExternalName":
        return
    wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
    if wanted == "None":
        spec["clusterIPs"] = ["None"]
    else:
        ip = api.allocator.allocate(meta["namespace"], meta["name"], wanted, dry_run=ctx.dry_run)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        for port in spec.get("ports") or []:
            port.setdefault("nodePort", 30000 + secrets.randbelow(2768))
        spec.setdefault("externalTrafficPolicy", "Cluster")


def release_service(api: Api, obj: Obj) -> None:
    for ip in (obj.get("spec") or {}).get("clusterIPs") or []:
        api.allocator.release(ip)


# --- namespaces and bootstrap -----------------------------------------------------------------


def namespace_contents(namespace: str, ca_pem: str) -> list[tuple[str, str, str, Obj]]:
    """(group, version, resource, object) the controllers create in every namespace."""
    return [
        (
            "",
            "v1",
            "serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}},
        ),
        (
            "",
            "v1",
            "configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "namespace": namespace,
                    "annotations": {
                        "kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
                        "kube-apiserver when using internal endpoints "
                        "such as the internal service IP or kubernetes.default.svc. "
                        "No other usage is guaranteed across distributions of Kubernetes clusters."
                    },
                },
                "data": {"ca.crt": ca_pem},
            },
        ),
    ]


def populate_namespace(api: Api, namespace: str) -> None:
    for group, version, resource, obj in namespace_contents(namespace, api.config.ca_pem):
        info = api.builtin(group, version, resource)
        manager = "kube-controller-manager"
        try:
            api.create(api.system_context(manager), info, namespace, obj)
        except ApiStatusError as exc:
            if exc.reason not in ("AlreadyExists", "NotFound", "Forbidden"):
                raise


def bootstrap(api: Api) -> None:
    """Create what a fresh control plane has; safe to run on every replica, concurrently."""
    ctx = api.system_context("kube-apiserver")

    def ensure(group: str, version: str, resource: str, namespace: str | None, obj: Obj) -> None:
        info = api.builtin(group, version, resource)
        key = info.key(api.prefix, namespace, obj["metadata"]["name"])
        if api.store.get(key) is not None:
            return
        try:
            api.create(ctx, info, namespace, obj)
        except ApiStatusError:
            # Another replica bootstrapping at the same moment won the race (AlreadyExists,
            # or for the `kubernetes` Service its address is already allocated).
            if api.store.get(key) is None:
                raise

    for name in SYSTEM_NAMESPACES:
        ensure("", "v1", "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        populate_namespace(api, name)
    ensure(
        "networking.k8s.io",
        "v1",
        "servicecidrs",
        None,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": "kubernetes"},
            "spec": {"cidrs": [str(api.allocator.network)]},
        },
    )
    host, port = api.config.advertise_host, api.config.advertise_port
    ensure(
        "",
        "v1",
        "services",
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": api.allocator.first(),
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
        },
    )
    ensure(
        "",
        "v1",
        "endpoints",
        "default",
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
            },
            "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        },
    )
    ensure(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "default",
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    )
    for gv in api.discovery.group_versions([]):
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        aggregated = group in ("metrics.k8s.io",)
        spec: Obj = {"group": group, "version": version, "groupPriorityMinimum": 1000, "versionPriority": 15}
        if aggregated:
            spec.update(
                service={"namespace": "kube-system", "name": "metrics-server", "port": 443},
                insecureSkipTLSVerify=True,
                groupPriorityMinimum=100,
                versionPriority=100,
            )
        ensure(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            None,
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {
                    "name": f"{version}.{group}",
                    "labels": {} if aggregated else {"kube-aggregator.kubernetes.io/automanaged": "onstart"},
                },
                "spec": spec,
            },
        )
