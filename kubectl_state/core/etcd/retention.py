"""Retention of saved snapshots: by count, by age (exponential thinning), or both.

Only snapshots this tool saved count (a FILE.meta.json of our format beside them), so
retention never deletes a file it did not write. Shared by `kubectl state etcd snapshot
save --keep` and the etcd_snapshot Ansible module.

The age policy thins backups out the way gardener's etcd-backup-restore does with its
"Exponential" garbage-collection policy: every snapshot of the most recent hours, then the
newest of each hour, of each day, of each week, and nothing older. Hours, days and weeks
are UTC calendar periods (weeks start on Monday), so which snapshot survives does not
shift with the moment retention happens to run. The newest snapshot is never deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubectl_state.core.errors import UsageError
from kubectl_state.core.etcd.snapshot import META_FORMAT, META_SUFFIX, meta_path

_HOUR = datetime.timedelta(hours=1)
_DAY = datetime.timedelta(days=1)
_WEEK = datetime.timedelta(weeks=1)


@dataclass(frozen=True)
class ExponentialPolicy:
    """What the age policy keeps; the defaults are etcd-backup-restore's Exponential policy."""

    #: Every snapshot younger than this many hours (etcd-backup-restore: the current hour).
    all_hours: int = 1
    #: Then the newest snapshot of each hour, for snapshots younger than this many hours.
    hourly_hours: int = 24
    #: Then the newest of each day, for snapshots younger than this many days.
    daily_days: int = 7
    #: Then the newest of each week, for snapshots younger than this many weeks; older ones go.
    weekly_weeks: int = 4

    def __post_init__(self) -> None:
        for name in ("all_hours", "hourly_hours", "daily_days", "weekly_weeks"):
            if getattr(self, name) < 0:
                raise UsageError(f"the retention policy's {name} must not be negative")


def _hour(t: datetime.datetime) -> tuple[int, ...]:
    return (t.year, t.month, t.day, t.hour)


def _day(t: datetime.datetime) -> tuple[int, ...]:
    return (t.year, t.month, t.day)


def _week(t: datetime.datetime) -> tuple[int, ...]:
    iso = t.isocalendar()
    return (iso.year, iso.week)


def _utc(t: datetime.datetime) -> datetime.datetime:
    # A naive time is taken as UTC: that is what the snapshot metadata records.
    return t.replace(tzinfo=datetime.UTC) if t.tzinfo is None else t.astimezone(datetime.UTC)


def expired(times: Sequence[datetime.datetime], now: datetime.datetime, *,
            keep: int | None = None, policy: ExponentialPolicy | None = None) -> list[int]:
    """Indexes into `times` of the backups to delete, oldest first.

    `policy` thins by age (see ExponentialPolicy); `keep` then caps the count, deleting the
    oldest of what the policy kept. With neither, nothing is deleted. The newest backup
    always stays, even one dated in the future (a clock that went back).
    """
    if keep is not None and keep < 1:
        raise UsageError("keeping fewer than one snapshot would delete the one just saved")
    if not times:
        return []
    now = _utc(now)
    order = sorted(range(len(times)), key=lambda i: _utc(times[i]))
    kept = list(order)
    if policy is not None:
        kept = [i for i in order if _policy_keeps(i, order, times, now, policy)]
        newest = order[-1]
        if newest not in kept:
            kept.append(newest)
    if keep is not None:
        kept = kept[max(len(kept) - keep, 0):]
    survivors = set(kept)
    return [i for i in order if i not in survivors]


def _policy_keeps(i: int, order: Sequence[int], times: Sequence[datetime.datetime], now: datetime.datetime,
                  policy: ExponentialPolicy) -> bool:
    t = _utc(times[i])
    age = now - t
    period: Callable[[datetime.datetime], tuple[int, ...]]
    if age < policy.all_hours * _HOUR:
        return True
    if age < policy.hourly_hours * _HOUR:
        period = _hour
    elif age < policy.daily_days * _DAY:
        period = _day
    elif age < policy.weekly_weeks * _WEEK:
        period = _week
    else:
        return False
    # The newest of its period: no later backup falls in the same hour/day/week.
    mine = period(t)
    return not any(period(_utc(times[j])) == mine and _utc(times[j]) > t
                   for j in order if j != i) and _is_last_of_equal(i, order, times)


def _is_last_of_equal(i: int, order: Sequence[int], times: Sequence[datetime.datetime]) -> bool:
    """Of backups with the very same time, only the last in sorted order counts as the newest."""
    t = _utc(times[i])
    same = [j for j in order if _utc(times[j]) == t]
    return same[-1] == i


# --- snapshots on disk ---------------------------------------------------------------------


def _saved(directory: str | os.PathLike[str]) -> list[tuple[str, float, Path]]:
    found: list[tuple[str, float, Path]] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for entry in names:
        if not entry.endswith(META_SUFFIX):
            continue
        snapshot = Path(directory) / entry[: -len(META_SUFFIX)]
        try:
            meta = json.loads((Path(directory) / entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT or not snapshot.is_file():
            continue
        # The saved time first; the file's mtime breaks ties between snapshots of one second.
        found.append((str(meta.get("time") or ""), snapshot.stat().st_mtime, snapshot))
    found.sort()
    return found


def saved_snapshots(directory: str | os.PathLike[str]) -> list[Path]:
    """The snapshots kubectl-state saved in `directory`, oldest first."""
    return [path for _, _, path in _saved(directory)]


def _saved_at(recorded: str, mtime: float) -> datetime.datetime:
    """When a snapshot was saved: its metadata's time, else (unreadable) the file's mtime."""
    with contextlib.suppress(ValueError):
        return datetime.datetime.strptime(recorded, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromtimestamp(mtime, datetime.UTC)


def snapshots_to_prune(directory: str | os.PathLike[str], keep: int | None,
                       extra: str | os.PathLike[str] | None = None, *,
                       policy: ExponentialPolicy | None = None,
                       now: datetime.datetime | None = None) -> list[Path]:
    """The snapshots `keep` (newest N) and `policy` (by age) would delete, oldest first.

    `extra` is one about to be saved now (for a dry run); it is never among the result.
    """
    if keep is not None and keep < 1:
        raise UsageError("keeping fewer than one snapshot would delete the one just saved")
    moment = now or datetime.datetime.now(datetime.UTC)
    entries = [(path, _saved_at(recorded, mtime)) for recorded, mtime, path in _saved(directory)]
    if extra is not None and Path(extra) not in [path for path, _ in entries]:
        entries.append((Path(extra), moment))
    victims = expired([t for _, t in entries], moment, keep=keep, policy=policy)
    return [entries[i][0] for i in victims]


def companions(path: str | os.PathLike[str], suffixes: Iterable[str]) -> list[Path]:
    """The other files of a snapshot's backup: its name up to the first dot, plus each suffix.

    For `kubectl-state-20250101T000000Z.etcd.db` and `.state.tar.gz` that is
    `kubectl-state-20250101T000000Z.state.tar.gz`, the API export taken with it.
    """
    snapshot = Path(path)
    stem = snapshot.name.split(".", 1)[0]
    found = []
    for suffix in suffixes:
        if not suffix or "/" in suffix or os.sep in suffix:
            raise UsageError(f"a companion suffix is the end of a file name, not {suffix!r}")
        other = snapshot.with_name(stem + suffix)
        if other != snapshot and other != meta_path(snapshot):
            found.append(other)
    return found


def prune_snapshots(paths: list[Path], companion_suffixes: Iterable[str] = ()) -> None:
    """Delete snapshots, their metadata files and their companions (see companions())."""
    suffixes = list(companion_suffixes)
    for path in paths:
        for victim in (path, meta_path(path), *companions(path, suffixes)):
            with contextlib.suppress(FileNotFoundError):
                # An API export written as a directory archive is a companion too.
                if victim.is_dir() and not victim.is_symlink():
                    shutil.rmtree(victim)
                else:
                    os.unlink(victim)

