"""The steps of a lifecycle plan: what is done, to which host, said in one line."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.Enum):
    START_ENDPOINT = "start_endpoint"
    STOP_ENDPOINT = "stop_endpoint"
    FORM_CLUSTER = "form_cluster"
    ADD_LEARNER = "add_learner"
    START_MEMBER = "start_member"
    PROMOTE = "promote"
    REMOVE_MEMBER = "remove_member"
    STOP_AND_WIPE = "stop_and_wipe"
    SNAPSHOT = "snapshot"
    UPGRADE_MEMBER = "upgrade_member"
    START_APISERVER = "start_apiserver"
    STOP_APISERVER = "stop_apiserver"
    REPLACE_APISERVER = "replace_apiserver"
    ADD_TO_ENDPOINT = "add_to_endpoint"
    REMOVE_FROM_ENDPOINT = "remove_from_endpoint"
    # Backup and restore (kubectl_state.core.lifecycle.recovery).
    EXPORT = "export"
    RETENTION = "retention"
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"
    STAGE_SNAPSHOT = "stage_snapshot"
    PAUSE_APISERVER = "pause_apiserver"
    STOP_MEMBER = "stop_member"
    RESTORE_MEMBER = "restore_member"
    START_RESTORED = "start_restored"
    IMPORT = "import"
    # The pivot (kubectl_state.core.lifecycle.pivot); its other steps are the ones above.
    COPY_OBJECTS = "copy_objects"
    VERIFY = "verify"


_TEXT = {
    Action.START_ENDPOINT: "start the API endpoint (HAProxy) on {host}",
    Action.STOP_ENDPOINT: "stop the API endpoint (HAProxy) on {host} and wipe its files",
    Action.FORM_CLUSTER: "form the etcd cluster with {host}",
    Action.ADD_LEARNER: "add etcd member {host} as a learner",
    Action.START_MEMBER: "start etcd member {host}",
    Action.PROMOTE: "promote etcd member {host} once it has caught up",
    Action.REMOVE_MEMBER: "remove etcd member {host} from the cluster",
    Action.STOP_AND_WIPE: "stop etcd on {host} and wipe its data",
    Action.SNAPSHOT: "take an etcd snapshot from {host}",
    Action.UPGRADE_MEMBER: "upgrade etcd member {host}: stop, swap the binary, start, wait until healthy",
    Action.START_APISERVER: "start API server {host}",
    Action.STOP_APISERVER: "stop API server {host} and wipe its files",
    Action.REPLACE_APISERVER: "replace API server {host} by surge: start a new one, add it to the endpoint, "
                              "take the old one out and stop it",
    Action.ADD_TO_ENDPOINT: "add API server {host} to the API endpoint",
    Action.REMOVE_FROM_ENDPOINT: "remove API server {host} from the API endpoint",
    Action.EXPORT: "export the API objects through the API endpoint on {host}",
    Action.RETENTION: "apply the retention to the backups on {host}",
    Action.SCHEDULE: "install the backup schedule on {host}",
    Action.UNSCHEDULE: "remove the backup schedule from {host}",
    Action.STAGE_SNAPSHOT: "copy the snapshot to etcd member {host}",
    Action.PAUSE_APISERVER: "remove API server {host} from the API endpoint and stop it (its files kept)",
    Action.STOP_MEMBER: "stop etcd member {host} (quorum is not kept: the cluster is replaced)",
    Action.RESTORE_MEMBER: "restore etcd member {host}'s data dir from the snapshot (the old one moved aside)",
    Action.START_RESTORED: "start the restored etcd members together: {host}",
    Action.IMPORT: "import the API-level export through the API endpoint on {host}",
    Action.COPY_OBJECTS: "copy the chosen objects from {host} into the target (state_migrate)",
    Action.VERIFY: "verify through the API endpoint on {host}: the target's etcd has quorum, every member votes, "
                   "every exported object is served",
}


@dataclass(frozen=True)
class Step:
    action: Action
    host: str
    #: Extra facts for the reader (a peer URL, a version change); part of the text.
    detail: str = ""

    @property
    def text(self) -> str:
        line = _TEXT[self.action].format(host=self.host)
        return f"{line} ({self.detail})" if self.detail else line

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action.value, "host": self.host, "detail": self.detail, "text": self.text}


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps that passed the safety checks, and notes on what was left alone."""

    operation: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.steps

    def hosts(self, action: Action) -> list[str]:
        """The hosts of every step of `action`, in plan order (what a playbook loops over)."""
        return [s.host for s in self.steps if s.action is action]

    def lines(self) -> list[str]:
        if not self.steps:
            return [f"{self.operation}: nothing to do", *self.notes]
        return [f"{i}. {s.text}" for i, s in enumerate(self.steps, start=1)] + list(self.notes)

    def to_dict(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }
