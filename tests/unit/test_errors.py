"""The error hierarchy: every error knows its exit status and carries a message for a person."""

from __future__ import annotations

import inspect

import pytest

from kubectl_state.core import errors
from kubectl_state.core.errors import ApiError, ExitStatus, KubectlStateError


def all_error_classes() -> list[type[KubectlStateError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, KubectlStateError)
    ]


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_maps_to_a_documented_nonzero_exit_status(cls: type[KubectlStateError]) -> None:
    assert cls.exit_status in ExitStatus
    assert cls.exit_status != ExitStatus.OK


def test_usage_errors_exit_2_like_kubectl() -> None:
    assert errors.UsageError("x").exit_status == 2


def test_api_error_keeps_the_status_and_uses_its_message() -> None:
    status = {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": 'configmaps "a" already exists'}
    err = ApiError(status)
    assert err.code == 409
    assert err.reason == "AlreadyExists"
    assert str(err) == 'configmaps "a" already exists'
    assert err.status["kind"] == "Status"
    assert err.exit_status == ExitStatus.SERVER_ERROR


def test_api_error_without_message_falls_back_to_reason() -> None:
    assert str(ApiError({"code": 404, "reason": "NotFound"})) == "NotFound"
    assert str(ApiError({"code": 500})) == "HTTP 500"


def test_readme_documents_every_exit_status() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for status in ExitStatus:
        assert f"| {int(status)} " in readme, f"exit status {status.name} missing from README's table"
