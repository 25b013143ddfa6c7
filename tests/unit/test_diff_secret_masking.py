"""`kubectl state diff` shows a Secret's keys, never its values (as `kubectl diff` masks them)."""

from __future__ import annotations

from kubectl_state.core.workflows.restore.diff import _masked


def secret(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}, "data": data}


def test_equal_values_become_stars_and_changed_ones_say_which_side() -> None:
    live = secret(user="YWRtaW4=", password="b2xk", gone="eA==")
    wanted = secret(user="YWRtaW4=", password="bmV3", added="eQ==")
    before, after = _masked(live, wanted)
    assert before is not None
    assert before["data"] == {"user": "***", "password": "*** (before)", "gone": "***"}
    assert after["data"] == {"user": "***", "password": "*** (after)", "added": "***"}
    # The masked copies still differ where the values did, so the diff shows that key changed.
    assert before["data"]["password"] != after["data"]["password"]
    # The inputs are untouched: the comparison itself runs on the real values.
    assert live["data"] == {"user": "YWRtaW4=", "password": "b2xk", "gone": "eA=="}


def test_a_missing_live_secret_and_string_data_are_masked_too() -> None:
    wanted = {**secret(token="c2VjcmV0"), "stringData": {"plain": "hunter2"}}
    before, after = _masked(None, wanted)
    assert before is None
    assert after["data"] == {"token": "***"}
    assert after["stringData"] == {"plain": "***"}
    assert "hunter2" not in repr(after) and "c2VjcmV0" not in repr(after)
