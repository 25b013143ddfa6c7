"""A Kubernetes API test server on a real etcd (test infrastructure, not a product).

No kube-apiserver binary can be installed where the tests run, so this package serves the
parts of the Kubernetes API that kubectl, the Python `kubernetes` client and kubectl-state
use, and stores every object in etcd exactly where kube-apiserver stores it when started
with `--storage-media-type=application/json`. API-level and etcd-level tests therefore see
the same state. Start it with `python -m tests.apiserver --help`.

Modules, one job each:
  __main__    command line (kube-apiserver's flag names)
  server      HTTP(S) handling, routing, authentication
  handlers    the API semantics of get/list/create/update/patch/delete/watch
  status      `kind: Status` errors
  registry    the resource table and the etcd key layout
  discovery   /api, /apis and per-group-version documents from tests/fixtures
  openapi     the /openapi/v3 documents kubectl fetches before it writes
  storage     etcd-backed reads and revision-conditioned writes
  watch       etcd watches turned into Kubernetes watch events
  protobuf    the few protobuf bodies kubectl's typed `create` commands send
  patch       JSON merge, JSON patch and strategic merge patches
  managed     managedFields and server-side apply
  selectors   label and field selectors
  crd         CustomResourceDefinitions: discovery entries, conditions, schema validation
  defaults    server-populated fields, clusterIP allocation, namespace and cluster bootstrap
  tls         a self-signed serving certificate and the kubeconfig for clients
  fixture     start/stop helpers (etcd, server replicas) for tests and benchmarks
  pytest_plugin  the `kube_cluster` fixtures
  testing     helpers for API-level tests (kubectl, DynamicClient, raw requests)
  test_logic  unit tests of the pure parts
"""
