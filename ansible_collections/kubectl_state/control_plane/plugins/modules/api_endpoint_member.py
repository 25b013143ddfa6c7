#!/usr/bin/python
# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: api_endpoint_member
short_description: One kube-apiserver replica in the HAProxy backend of the fixed API endpoint
version_added: 0.1.0
description:
  - Adds, drains or removes one server of a running HAProxy's backend through HAProxy's runtime API
    (its stats socket, which must be declared with C(level admin)), without a reload.
  - Servers added at runtime are lost when HAProxy restarts or reloads. With O(config_file), the
    backend section of HAProxy's configuration file is kept in step (the server's C(server) line is added,
    replaced or removed), so the endpoint's membership survives the endpoint host.
  - Runs on the host where HAProxy runs.
author:
  - kubectl-state developers (@kubectl-state)
options:
  backend:
    description:
      - Name of the HAProxy backend (a C(backend) or C(listen) section).
    type: str
    required: true
  name:
    description:
      - Name of the server in the backend, for instance the replica's host name.
    type: str
    required: true
  address:
    description:
      - The replica's address as V(HOST:PORT) (V([IPV6]:PORT) for IPv6). Required unless O(state=absent).
      - A server of that name at another address is moved to this one.
    type: str
  state:
    description:
      - V(present) puts the server in the backend, taking traffic.
      - V(drained) puts it in the backend taking no new connections while existing ones go on, to take a
        replica out of rotation before stopping it. Drain is a runtime state only; the configuration file
        records membership and address.
      - V(absent) puts the server in maintenance and deletes it once its connections have ended (waiting up to
        O(drain_timeout) seconds, or closing them at once with O(shutdown_sessions)).
    type: str
    choices: [present, drained, absent]
    default: present
  socket:
    description:
      - HAProxy's stats socket, a UNIX socket path, or V(HOST:PORT) for a TCP one.
    type: str
    default: /run/haproxy/admin.sock
  server_options:
    description:
      - HAProxy server keywords for a server being added (runtime and configuration file alike),
        for instance V([check, inter, 2s]). Health checks (V(check)) are enabled right after adding.
      - Compared only in the configuration file; a running server keeps the keywords it was added with.
      - When not set, the keywords the configuration file already has for the server are kept (none for a new server).
    type: list
    elements: str
  config_file:
    description:
      - HAProxy's configuration file, whose O(backend) section is kept in step. It must already have that section.
    type: path
  validate:
    description:
      - Command that checks the edited configuration file before it replaces the old one, with V(%s) for
        the new file, for instance V(haproxy -c -f %s).
    type: str
  drain_timeout:
    description:
      - With O(state=absent), seconds to wait for the server's connections to end before HAProxy can delete it.
    type: float
    default: 30.0
  shutdown_sessions:
    description:
      - With O(state=absent), close the server's remaining connections instead of waiting for them to end.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for HAProxy to answer one runtime command.
    type: float
    default: 10.0
extends_documentation_fragment:
  - kubectl_state.control_plane.connection
attributes:
  check_mode:
    support: full
    description: Reads the backend's servers and the configuration file and reports the commands it would send.
  diff_mode:
    support: full
    description: The backend's server list and, with O(config_file), the configuration file, before and after.
"""

EXAMPLES = r"""
- name: Put the new replica behind the API endpoint
  kubectl_state.control_plane.api_endpoint_member:
    backend: kube-apiservers
    name: cp-4
    address: 10.0.0.14:6443
    socket: /run/haproxy/admin.sock
    config_file: /etc/haproxy/haproxy.cfg
    validate: haproxy -c -f %s
    server_options: [check, check-ssl, verify, none]

- name: Take cp-1 out of rotation before stopping it
  kubectl_state.control_plane.api_endpoint_member:
    backend: kube-apiservers
    name: cp-1
    address: 10.0.0.11:6443
    state: drained

- name: Remove cp-1 from the endpoint
  kubectl_state.control_plane.api_endpoint_member:
    backend: kube-apiservers
    name: cp-1
    state: absent
    config_file: /etc/haproxy/haproxy.cfg
    shutdown_sessions: true
"""

RETURN = r"""
server:
  description: The server after the change (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"name": "cp-4", "address": "10.0.0.14:6443", "state": "ready", "up": true}
servers:
  description: Every server of the backend after the change (in check mode, as it would be).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Server name.
      type: str
    address:
      description: HOST:PORT it points at.
      type: str
    state:
      description: Admin state, V(ready), V(drain) or V(maint).
      type: str
    up:
      description: Whether HAProxy sees the server running.
      type: bool
commands:
  description: The runtime API commands sent (in check mode, that would be sent).
  returned: always
  type: list
  elements: str
  sample: ["add server kube-apiservers/cp-4 10.0.0.14:6443 check", "set server kube-apiservers/cp-4 state ready"]
config_changed:
  description: Whether the configuration file was (or would be) changed.
  returned: always
  type: bool
"""

from ansible_collections.kubectl_state.control_plane.plugins.module_utils.core import core_errors, new_module


def server_lines(servers):
    return "".join("{} {} {}\n".format(s["name"], s["address"], s["state"]) for s in servers)


def main():
    module = new_module(
        dict(
            backend=dict(type="str", required=True),
            name=dict(type="str", required=True),
            address=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "drained", "absent"]),
            socket=dict(type="str", default="/run/haproxy/admin.sock"),
            server_options=dict(type="list", elements="str"),
            config_file=dict(type="path"),
            validate=dict(type="str"),
            drain_timeout=dict(type="float", default=30.0),
            shutdown_sessions=dict(type="bool", default=False),
            timeout=dict(type="float", default=10.0),
        ),
        required_if=[("state", "present", ("address",)), ("state", "drained", ("address",))],
    )
    from kubectl_state.core.endpoint.haproxy import RuntimeAPI, ensure_server

    p = module.params
    with core_errors(module):
        change = ensure_server(
            RuntimeAPI(p["socket"], timeout=p["timeout"]),
            p["backend"],
            p["name"],
            p["state"],
            address=p["address"],
            options=p["server_options"],
            config_file=p["config_file"],
            validate=p["validate"],
            drain_wait=p["drain_timeout"],
            shutdown_sessions=p["shutdown_sessions"],
            check_mode=module.check_mode,
        )
    result = dict(
        changed=change.changed,
        server=change.server,
        servers=change.after,
        commands=change.commands,
        config_changed=bool(change.config and change.config.changed),
    )
    if module._diff:
        header = "backend {} servers ({})".format(p["backend"], p["socket"])
        diffs = [dict(before=server_lines([s.to_dict() for s in change.before]), after=server_lines(change.after),
                      before_header=header, after_header=header)]
        if change.config is not None:
            diffs.append(dict(before=change.config.before, after=change.config.after,
                              before_header=change.config.path, after_header=change.config.path))
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
