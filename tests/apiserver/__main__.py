"""`python -m tests.apiserver`: run one API server replica on an etcd cluster.

Flags carry kube-apiserver's names where they mean the same thing. Several replicas may
share one etcd (and one --etcd-prefix): they keep no state of their own.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

from kubectl_state.core.errors import KubectlStateError

from .defaults import bootstrap
from .discovery import Discovery, StaticDiscovery
from .handlers import Api, ServerConfig
from .registry import ResourceTable
from .server import ApiHTTPServer, Users
from .storage import Store
from .tls import self_signed, write_kubeconfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.apiserver",
        description="A Kubernetes API test server that stores objects in etcd where kube-apiserver does.",
    )
    parser.add_argument("--etcd-servers", required=True, help="comma-separated etcd client URLs")
    parser.add_argument("--etcd-cafile", help="CA of the etcd members' serving certificates (https etcd servers)")
    parser.add_argument("--etcd-certfile", help="client certificate presented to etcd")
    parser.add_argument("--etcd-keyfile", help="key of --etcd-certfile")
    parser.add_argument("--etcd-prefix", default="/registry", help="key prefix of every object (default /registry)")
    parser.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--secure-port", type=int, default=6443, help="port to listen on; 0 picks a free one")
    parser.add_argument("--tls-cert-file", help="serving certificate (PEM); a self-signed one is made when absent")
    parser.add_argument("--tls-private-key-file", help="key of --tls-cert-file (PEM)")
    parser.add_argument("--cert-dir", help="where the self-signed pair is written (default: a temporary directory)")
    parser.add_argument("--plain-http", action="store_true", help="serve plain HTTP (quick tests only)")
    parser.add_argument("--token-auth-file", help='CSV of bearer tokens: token,user,uid[,"groups"]; 401 without one')
    parser.add_argument("--service-cluster-ip-range", default="10.96.0.0/12", help="Service clusterIP range")
    parser.add_argument("--advertise-address", help="address published in discovery and the kubernetes Endpoints")
    parser.add_argument(
        "--storage-media-type",
        default="application/json",
        choices=["application/json"],
        help="only JSON: the test server never writes protobuf",
    )
    parser.add_argument("--write-kubeconfig", metavar="PATH", help="write a kubeconfig for clients once serving")
    parser.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log every request when >= 1")
    args = parser.parse_args(argv)
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        parser.error("--tls-cert-file and --tls-private-key-file go together")
    return args


def _wait_for_etcd(store: Store, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            store.current_revision()
            return
        except KubectlStateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    endpoints = [e.strip() for e in args.etcd_servers.split(",") if e.strip()]
    store = Store(endpoints, ca_file=args.etcd_cafile, cert_file=args.etcd_certfile, key_file=args.etcd_keyfile)
    static = StaticDiscovery()
    table = ResourceTable(static.resources())
    host = args.advertise_address or ("127.0.0.1" if args.bind_address in ("0.0.0.0", "::") else args.bind_address)
    tls_context: ssl.SSLContext | None = None
    ca_pem = ""
    if args.plain_http:
        # No TLS, but kube-root-ca.crt still holds a CA bundle, as in every real cluster.
        cert, _ = self_signed([host], Path(args.cert_dir or tempfile.mkdtemp(prefix="apiserver-cert-")))
        ca_pem = cert.read_text()
    else:
        if args.tls_cert_file:
            cert, key = Path(args.tls_cert_file), Path(args.tls_private_key_file)
        else:
            cert, key = self_signed(
                [host, args.bind_address], Path(args.cert_dir or tempfile.mkdtemp(prefix="apiserver-cert-"))
            )
        ca_pem = cert.read_text()
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(cert, key)
        tls_context.set_alpn_protocols(["http/1.1"])  # no h2: clients fall back to HTTP/1.1
    users = Users.from_file(args.token_auth_file) if args.token_auth_file else None
    config = ServerConfig(
        prefix=args.etcd_prefix,
        service_cidr=args.service_cluster_ip_range,
        ca_pem=ca_pem,
        advertise_host=host,
        advertise_port=args.secure_port,
    )
    api = Api(store, table, Discovery(static), config)
    httpd = ApiHTTPServer(
        (args.bind_address, args.secure_port), api, users=users, tls=tls_context, verbose=args.verbosity > 0
    )
    port = httpd.server_address[1]
    config.advertise_port = port
    _wait_for_etcd(store)
    api.refresh_crds()
    bootstrap(api)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    scheme = "http" if args.plain_http else "https"
    url = f"{scheme}://{host}:{port}"
    if args.write_kubeconfig:
        # Without a token file any token is accepted; kubectl still needs one, or it
        # prompts for a user name.
        token = next(iter(users.tokens), None) if users else "kubectl-state-test-token"
        write_kubeconfig(Path(args.write_kubeconfig), url, ca_pem=None if args.plain_http else ca_pem, token=token)
    print(
        f"kubectl-state test apiserver serving on {url} (etcd {','.join(endpoints)}, prefix {args.etcd_prefix})",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    httpd.shutdown()
    httpd.server_close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
