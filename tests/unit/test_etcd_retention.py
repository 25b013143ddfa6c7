"""Snapshot retention (kubectl_state.core.etcd.retention) on synthetic timestamps."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from kubectl_state.core.errors import UsageError
from kubectl_state.core.etcd.retention import (
    ExponentialPolicy,
    companions,
    expired,
    prune_snapshots,
    snapshots_to_prune,
)
from tests.unit.test_modules import run_module

UTC = datetime.UTC
# A Wednesday: its ISO week runs Monday 2025-03-10 to Sunday 2025-03-16.
NOW = datetime.datetime(2025, 3, 12, 10, 30, tzinfo=UTC)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def kept(times: list[datetime.datetime], **kwargs: object) -> list[datetime.datetime]:
    gone = set(expired(times, NOW, **kwargs))  # type: ignore[arg-type]
    return sorted(t for i, t in enumerate(times) if i not in gone)


def every_half_hour(days: int) -> list[datetime.datetime]:
    return [NOW - k * datetime.timedelta(minutes=30) for k in range(days * 48 + 1)]


def test_count_keeps_the_newest_n() -> None:
    times = [at("2025-03-01 00:00"), at("2025-03-03 00:00"), at("2025-03-02 00:00")]
    assert expired(times, NOW, keep=2) == [0]
    assert expired(times, NOW, keep=3) == []
    assert expired(times, NOW) == []  # no rule: nothing goes


def test_exponential_defaults_thin_six_weeks_of_half_hourly_backups() -> None:
    times = every_half_hour(42)
    expected = (
        # Every backup of the last hour.
        [at("2025-03-12 10:00"), at("2025-03-12 10:30")]
        # The newest of each hour back to 24 hours ago: the :30 backups from 11:30 yesterday to 09:30 today.
        + [at("2025-03-11 11:30") + datetime.timedelta(hours=h) for h in range(23)]
        # The newest of each earlier day back to 7 days ago (yesterday's newest is kept by the hourly rule).
        + [at(f"2025-03-{d:02d} 23:30") for d in range(5, 11)]
        # The newest of each earlier week back to 4 weeks ago (ISO weeks end on Sunday); the week of
        # 3-9 March has its newest backup kept as a daily one already.
        + [at("2025-02-16 23:30"), at("2025-02-23 23:30"), at("2025-03-02 23:30")]
    )
    assert kept(times, policy=ExponentialPolicy()) == sorted(expected)


def test_exponential_periods_are_parameters() -> None:
    times = every_half_hour(10)
    # Only one daily backup per day for 3 days, nothing hourly.
    policy = ExponentialPolicy(all_hours=0, hourly_hours=0, daily_days=3, weekly_weeks=0)
    # Today's newest (10:30) and the newest of each day younger than 3 days.
    assert kept(times, policy=policy) == [at("2025-03-09 23:30"), at("2025-03-10 23:30"),
                                          at("2025-03-11 23:30"), at("2025-03-12 10:30")]


def test_the_newest_backup_survives_even_when_too_old() -> None:
    times = [at("2024-01-01 00:00"), at("2024-01-02 00:00")]
    assert kept(times, policy=ExponentialPolicy()) == [at("2024-01-02 00:00")]


def test_count_caps_what_the_age_policy_keeps() -> None:
    times = every_half_hour(3)
    both = kept(times, policy=ExponentialPolicy(), keep=5)
    assert both == kept(times, policy=ExponentialPolicy())[-5:]
    assert len(both) == 5


def test_times_in_other_zones_and_naive_times_are_compared_as_utc() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    # 12:10+02:00 is 10:10 UTC: in the last hour. A naive time counts as UTC.
    times = [datetime.datetime(2025, 3, 12, 12, 10, tzinfo=plus_two), datetime.datetime(2025, 3, 12, 9, 10),
             datetime.datetime(2025, 3, 12, 9, 20)]
    policy = ExponentialPolicy()
    assert expired(times, NOW, policy=policy) == [1]


def test_backups_of_the_same_second_count_once_per_period() -> None:
    same = at("2025-03-12 05:00")
    assert len(expired([same, same, at("2025-03-12 10:20")], NOW, policy=ExponentialPolicy())) == 1


def test_a_backup_from_the_future_is_kept() -> None:
    times = [at("2025-03-12 09:00"), at("2025-03-12 12:00")]  # the clock went back since
    assert expired(times, NOW, policy=ExponentialPolicy(all_hours=0, hourly_hours=0, daily_days=0,
                                                        weekly_weeks=0)) == [0]


def test_bad_rules_are_refused() -> None:
    with pytest.raises(UsageError, match="fewer than one"):
        expired([NOW], NOW, keep=0)
    with pytest.raises(UsageError, match="daily_days"):
        ExponentialPolicy(daily_days=-1)
    with pytest.raises(UsageError, match="end of a file name"):
        companions("/b/x.etcd.db", ["../evil"])


# --- on disk --------------------------------------------------------------------------------


def saved(directory: Path, name: str, when: datetime.datetime) -> Path:
    path = directory / name
    path.write_bytes(b"db")
    meta = {"format": "kubectl-state/etcd-snapshot", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    (directory / f"{name}.meta.json").write_text(json.dumps(meta))
    return path


def test_snapshots_to_prune_applies_the_policy_to_saved_snapshots_only(tmp_path: Path) -> None:
    names = {}
    for days in (40, 20, 2, 1):
        when = NOW - datetime.timedelta(days=days)
        names[days] = saved(tmp_path, f"b-{when:%Y%m%dT%H%M%SZ}.etcd.db", when)
    (tmp_path / "foreign.etcd.db").write_bytes(b"not ours")
    assert snapshots_to_prune(tmp_path, None, policy=ExponentialPolicy(), now=NOW) == [names[40]]
    assert snapshots_to_prune(tmp_path, 2, policy=ExponentialPolicy(), now=NOW) == [names[40], names[20]]
    # A snapshot about to be saved counts as the newest and is never pruned.
    upcoming = tmp_path / "next.etcd.db"
    assert snapshots_to_prune(tmp_path, 1, extra=upcoming, now=NOW) == [names[40], names[20], names[2], names[1]]


def test_pruning_takes_the_metadata_and_the_companions_along(tmp_path: Path) -> None:
    old = saved(tmp_path, "kubectl-state-20250101T000000Z.etcd.db", at("2025-01-01 00:00"))
    new = saved(tmp_path, "kubectl-state-20250301T000000Z.etcd.db", at("2025-03-01 00:00"))
    (tmp_path / "kubectl-state-20250101T000000Z.state.tar.gz").write_bytes(b"archive")
    (tmp_path / "kubectl-state-20250101T000000Z.state").mkdir()  # a directory archive
    (tmp_path / "kubectl-state-20250101T000000Z.state" / "manifest.json").write_text("{}")
    (tmp_path / "kubectl-state-20250301T000000Z.state.tar.gz").write_bytes(b"archive")
    assert companions(old, [".state.tar.gz"]) == [tmp_path / "kubectl-state-20250101T000000Z.state.tar.gz"]
    victims = snapshots_to_prune(tmp_path, 1)
    assert victims == [old]
    prune_snapshots(victims, [".state.tar.gz", ".state"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        new.name, f"{new.name}.meta.json", "kubectl-state-20250301T000000Z.state.tar.gz"]


# --- through the etcd_snapshot module ----------------------------------------------------------


def sound_snapshot(directory: Path, name: str, when: datetime.datetime) -> Path:
    """A file that passes the snapshot checks: whole bbolt pages, the sha256 trailer, matching metadata."""
    db = bytes(range(256)) * 2
    digest = hashlib.sha256(db).digest()
    path = directory / name
    path.write_bytes(db + digest)
    meta = {"format": "kubectl-state/etcd-snapshot", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fileSize": len(db) + len(digest), "sha256": digest.hex()}
    (directory / f"{name}.meta.json").write_text(json.dumps(meta))
    return path


def test_the_module_applies_the_age_policy_and_prunes_companions(tmp_path: Path) -> None:
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    old = sound_snapshot(tmp_path, "ks-old.etcd.db", now - datetime.timedelta(weeks=6))
    (tmp_path / "ks-old.state.tar.gz").write_bytes(b"archive")
    week = sound_snapshot(tmp_path, "ks-week.etcd.db", now - datetime.timedelta(days=10))
    current = sound_snapshot(tmp_path, "ks-now.etcd.db", now)
    args = {"path": str(current), "exponential": {}, "companions": [".state.tar.gz"]}
    result = run_module("etcd_snapshot", {**args, "_ansible_check_mode": True})
    assert result["changed"] is True and result["pruned"] == [str(old)], result
    assert old.exists()  # check mode deletes nothing
    result = run_module("etcd_snapshot", args)
    assert result["changed"] is True and result["pruned"] == [str(old)], result
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [week.name, f"{week.name}.meta.json", current.name, f"{current.name}.meta.json"])
    again = run_module("etcd_snapshot", args)
    assert again["changed"] is False and again["pruned"] == [], again
    bad = run_module("etcd_snapshot", {**args, "exponential": {"daily_days": -1}})
    assert bad["failed"] is True and "daily_days" in bad["msg"], bad
