"""One exception hierarchy for everything kubectl-state can refuse or fail at.

Every error carries a message meant for a person and the process exit status it maps to.
The CLI turns them into one line on stderr and that exit status (in one place:
`kubectl_state.cli.main`); the Ansible modules turn them into `fail_json(msg=...)`.
Nothing below this module may print.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from typing import Any


class ExitStatus(enum.IntEnum):
    """Process exit statuses of `kubectl state`. Documented in README.md ("Exit codes")."""

    OK = 0
    #: Something failed (an object could not be written, a step did not succeed).
    ERROR = 1
    #: The command line was wrong: unknown flag, missing argument, bad value.
    USAGE = 2
    #: Input that cannot be trusted or understood: a bad archive, file or kubeconfig.
    INVALID_INPUT = 3
    #: A server (API server, etcd member) could not be reached or did not answer in time.
    UNREACHABLE = 4
    #: A server answered and refused the request (API Status error, etcd error).
    SERVER_ERROR = 5
    #: The operation was refused because it is unsafe (it would cost etcd quorum, overwrite data).
    UNSAFE = 6
    #: Interrupted by the user (Ctrl-C), as shells report SIGINT.
    INTERRUPTED = 130


class KubectlStateError(Exception):
    """Base of every error kubectl-state raises on purpose.

    `message` is a complete sentence for the person at the terminal; it must never contain
    secret data or tokens.
    """

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(KubectlStateError):
    """The caller asked for something malformed (flags, arguments, option values)."""

    exit_status = ExitStatus.USAGE


class InvalidInputError(KubectlStateError):
    """Input that cannot be trusted or understood."""

    exit_status = ExitStatus.INVALID_INPUT


class ConfigError(InvalidInputError):
    """A kubeconfig, inventory or other configuration is missing or malformed."""


class ArchiveError(InvalidInputError):
    """A backup archive is malformed, tampered with or of an unknown format."""


class ConnectionFailed(KubectlStateError):
    """A server could not be reached, or did not answer in time."""

    exit_status = ExitStatus.UNREACHABLE

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class OperationTimeout(ConnectionFailed):
    """A wait (for a condition, a member to catch up, a server to answer) ran out of time."""


class ServerError(KubectlStateError):
    """A server answered and refused the request."""

    exit_status = ExitStatus.SERVER_ERROR


class ApiError(ServerError):
    """The Kubernetes API answered with a `Status` failure.

    Carries the Status object as the server sent it, like lightkube's ApiError, so callers
    can branch on `reason` and `code` without parsing messages.
    """

    def __init__(self, status: Mapping[str, Any], *, message: str | None = None) -> None:
        self.status: dict[str, Any] = dict(status)
        self.code: int = int(self.status.get("code") or 0)
        self.reason: str = str(self.status.get("reason") or "")
        text = message or str(self.status.get("message") or self.reason or f"HTTP {self.code}")
        super().__init__(text)


class EtcdError(ServerError):
    """etcd answered with an error; `message` is etcd's own text, `code` its gRPC code."""

    def __init__(self, message: str, *, code: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint


class UnsafeOperationError(KubectlStateError):
    """Refused because it would lose data or quorum; the message says why."""

    exit_status = ExitStatus.UNSAFE


class PartialFailure(KubectlStateError):
    """The operation ran to the end but some items failed; the report lists them."""

    exit_status = ExitStatus.ERROR


class Interrupted(KubectlStateError):
    """Stopped by the person (Ctrl-C) or the system (SIGTERM), after cleaning up: raised where
    a partial result is still worth reporting, instead of a bare KeyboardInterrupt."""

    exit_status = ExitStatus.INTERRUPTED


class TlsVerificationOffWarning(UserWarning):
    """TLS verification was turned off: anyone on the path can pose as the server."""


def warn_tls_verification_off(what: str, how: str, *, stacklevel: int = 3) -> None:
    """One clear warning (the CLI prints it as `Warning: ...`, the modules as Ansible warnings)
    instead of urllib3's InsecureRequestWarning for every pooled connection, silenced after it.

    `what` names the server(s), `how` the setting that turned verification off.
    """
    import urllib3  # noqa: PLC0415  (only the clients that talk TLS need it)

    warnings.warn(
        TlsVerificationOffWarning(
            f"TLS verification is off for {what} ({how}): the server's certificate is not checked, so "
            "credentials and data may go to an impostor; give it a CA certificate instead"
        ),
        stacklevel=stacklevel,
    )
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
