"""HTTP(S) handling: routing, authentication, bodies, Status errors, chunked watches.

Standard library only (http.server over HTTP/1.1, one thread per connection). Paths follow
kube-apiserver's layout: /api/v1/..., /apis/<group>/<version>/..., with namespaced
resources under .../namespaces/<ns>/<resource>/<name>[/<subresource>].
"""

from __future__ import annotations

import json
import select
import ssl
import sys
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from kubectl_state.core.errors import KubectlStateError

from . import openapi, protobuf, watch
from .discovery import VERSION_INFO
from .handlers import Api, RequestContext
from .registry import ResourceInfo
from .status import ApiStatusError, bad_request, method_not_supported, unauthorized, unsupported_media_type

MAX_BODY = 64 * 1024 * 1024


@dataclass
class Route:
    """A resource request's parts after parsing the path."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str
    watch: bool


@dataclass
class Users:
    """Bearer tokens from a kube-apiserver token file (token,user,uid,"group1,group2")."""

    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str) -> Users:
        import csv

        tokens = {}
        with open(path, newline="") as handle:
            for row in csv.reader(handle):
                if len(row) >= 2 and row[0].strip() and not row[0].startswith("#"):
                    tokens[row[0].strip()] = row[1].strip()
        return cls(tokens)


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        *,
        users: Users | None,
        tls: ssl.SSLContext | None,
        verbose: bool = False,
    ) -> None:
        self.api = api
        self.users = users
        self.tls = tls
        self.verbose = verbose
        super().__init__(address, ApiRequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:
            # The handshake runs on the connection's own thread (see ApiRequestHandler.setup),
            # so a slow or broken client never stalls accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiHTTPServer
    server_version = "kubectl-state-test-apiserver"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                self.request.close()
                raise
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # --- plumbing ----------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise ApiStatusError(413, "RequestEntityTooLarge", "the request body is too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiStatusError(413, "RequestEntityTooLarge", "the request body is too large")
        return self.rfile.read(length) if length else b""

    def _send(
        self, code: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any, ctx: RequestContext | None = None) -> None:
        headers = {}
        if ctx is not None and ctx.warnings:
            headers["Warning"] = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in ctx.warnings)
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)

    def _error(self, error: ApiStatusError) -> None:
        self._json(error.code, error.body())

    def _authenticate(self, path: str) -> str:
        users = self.server.users
        if users is None:
            return "system:admin"
        if path in ("/healthz", "/livez", "/readyz"):
            return "system:anonymous"
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip() in users.tokens:
            return users.tokens[token.strip()]
        raise unauthorized()

    # --- dispatch ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            user = self._authenticate(url.path)
            self._route(url.path.rstrip("/") or "/", params, body, user)
        except ApiStatusError as exc:
            self._error(exc)
        except KubectlStateError as exc:
            self._error(ApiStatusError(500, "InternalError", f"Internal error occurred: {exc}"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc()
            self._error(ApiStatusError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}"))

    def _route(self, path: str, params: dict[str, str], body: bytes, user: str) -> None:  # noqa: PLR0911 - one return per endpoint family
        api = self.server.api
        method = self.command if self.command != "HEAD" else "GET"
        if path in ("/healthz", "/livez", "/readyz"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        if method == "GET":
            if path == "/version":
                self._json(200, VERSION_INFO)
                return
            if path == "/api":
                self._json(200, api.discovery.api(f"{api.config.advertise_host}:{api.config.advertise_port}"))
                return
            if path == "/apis":
                self._json(200, api.discovery.groups(api.custom_resources()))
                return
            if path.startswith("/openapi/v3"):
                self._openapi(path)
                return
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                if method != "GET":
                    raise method_not_supported(method.lower(), parts[1], "")
                doc = api.discovery.group(parts[1], api.custom_resources())
                if doc is None:
                    raise _not_found_path()
                self._json(200, doc)
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not rest:
            if method != "GET":
                raise _not_found_path()
            gv = f"{group}/{version}" if group else version
            doc = api.discovery.resource_list(gv, api.custom_resources())
            if doc is None:
                raise _not_found_path()
            self._json(200, doc)
            return
        route = self._resolve(group, version, rest)
        ctx = self._context(params, user)
        self._dispatch(method, route, params, body, ctx)

    def _resolve(self, group: str, version: str, rest: list[str]) -> Route:
        watching = False
        if rest[0] == "watch":
            watching, rest = True, rest[1:]
        namespace: str | None = None
        if rest and rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _not_found_path()
        info = self.server.api.resolve(group, version, rest[0])
        if info is None or (namespace is not None and not info.namespaced):
            raise _not_found_path()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        if name is not None and info.namespaced and namespace is None:
            raise _not_found_path()
        return Route(info, namespace, name, subresource, watching)

    def _context(self, params: dict[str, str], user: str) -> RequestContext:
        dry_run = params.get("dryRun")
        if dry_run not in (None, "", "All"):
            raise bad_request(f'Invalid dryRun value "{dry_run}"; the only supported value is "All"')
        validation = params.get("fieldValidation") or "Warn"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, not {validation!r}")
        return RequestContext(
            user=user,
            user_agent=self.headers.get("User-Agent", ""),
            dry_run=dry_run == "All",
            field_manager=params.get("fieldManager") or None,
            field_validation=validation,
        )

    def _decode(self, body: bytes) -> Any:
        media = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        try:
            if media in ("application/json", ""):
                return json.loads(body or b"{}")
            if media == "application/yaml":
                return yaml.safe_load(body.decode() or "{}")
            if media == "application/vnd.kubernetes.protobuf":
                return protobuf.decode(body)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from None
        raise unsupported_media_type(media)

    def _dispatch(self, method: str, route: Route, params: dict[str, str], body: bytes, ctx: RequestContext) -> None:
        api, info, ns, name, sub = self.server.api, route.info, route.namespace, route.name, route.subresource
        if sub and sub not in info.subresources:
            raise _not_found_path()
        if sub and sub not in ("status", "scale"):
            raise method_not_supported(method.lower(), f"{info.resource}/{sub}", info.group)
        watching = route.watch or params.get("watch", "").lower() in ("1", "true")
        if method == "GET":
            if name is None and watching:
                self._watch(route, params, ctx)
            elif name is None:
                self._json(200, api.list(ctx, info, ns, params))
            elif watching:
                self._watch(route, {**params, "fieldSelector": f"metadata.name={name}"}, ctx)
            elif sub == "scale":
                self._json(200, api.get_scale(ctx, info, ns, name))
            else:
                self._json(200, api.get(ctx, info, ns, name))
        elif method == "POST":
            if name is not None:
                raise method_not_supported("create", info.resource, info.group)
            created = api.create(ctx, info, ns, self._decode(body))
            self._json(201, created, ctx)
        elif method == "PUT":
            if name is None:
                raise method_not_supported("update", info.resource, info.group)
            if sub == "scale":
                self._json(200, api.set_scale(ctx, info, ns, name, self._decode(body)), ctx)
            else:
                self._json(200, api.update(ctx, info, ns, name, self._decode(body), subresource=sub), ctx)
        elif method == "PATCH":
            if name is None:
                raise method_not_supported("patch", info.resource, info.group)
            content_type = self.headers.get("Content-Type") or ""
            if sub == "scale":
                self._json(200, api.set_scale(ctx, info, ns, name, body, media=content_type), ctx)
                return
            code, obj = api.patch(ctx, info, ns, name, body, content_type=content_type, params=params, subresource=sub)
            self._json(code, obj, ctx)
        elif method == "DELETE":
            options = self._decode(body) if body else {}
            if params.get("dryRun") == "All":
                ctx.dry_run = True
            if params.get("propagationPolicy"):
                options.setdefault("propagationPolicy", params["propagationPolicy"])
            if name is None:
                self._json(200, api.delete_collection(ctx, info, ns, params))
            else:
                self._json(200, api.delete(ctx, info, ns, name, options))
        else:
            raise method_not_supported(method.lower(), info.resource, info.group)

    # --- watch and openapi -------------------------------------------------------------------

    def _client_gone(self) -> bool:
        """A watch client sends nothing after its request: readable means it hung up."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, route: Route, params: dict[str, str], ctx: RequestContext) -> None:
        stream = watch.events(self.server.api, ctx, route.info, route.namespace, params)
        # Fail before the headers when the watch cannot start (bad parameters).
        first = next(stream, None)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            item = first
            while True:
                if item is None:
                    if self._client_gone():
                        return
                else:
                    self._chunk(json.dumps(item, separators=(",", ":")).encode() + b"\n")
                try:
                    item = next(stream)
                except StopIteration:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return
        finally:
            stream.close()

    def _openapi(self, path: str) -> None:
        api = self.server.api
        custom = api.custom_resources()
        gvs = api.discovery.group_versions(custom)
        resources = api.table.all()
        docs = {gv: openapi.document_bytes(openapi.group_version_document(gv, resources)) for gv in gvs}
        if path == "/openapi/v3":
            hashes = {gv: openapi.document_hash(body) for gv, body in docs.items()}
            self._json(200, openapi.index(gvs, hashes))
            return
        rel = path[len("/openapi/v3/") :]
        gv = rel[len("api/") :] if rel.startswith("api/") else rel[len("apis/") :] if rel.startswith("apis/") else ""
        if gv not in docs:
            raise _not_found_path()
        self._send(200, docs[gv])


def _not_found_path() -> ApiStatusError:
    return ApiStatusError(404, "NotFound", "the server could not find the requested resource", details={})
