"""The crash matrices' kill points: every state change in every run, a seeded sample of the rest."""

from __future__ import annotations

from tests.e2e.crash_points import describe, first_change, kill_points, state_changing

UPDATE = ["aside.begin", "aside.done", "upload.begin", "upload.done", "artifact.verified", "copy_package.begin",
          "copy_package.done", "install.begin", "install.done", "maintenance_off.begin", "maintenance_off.done",
          "remove_packages.begin", "remove_packages.done"]


def journal() -> list[dict]:
    events = [{"event": "run.start"}, {"event": "gate.begin", "step": "6.1"}, {"event": "lock.taken"},
              {"event": "gate", "step": "6.1"}, {"event": "gate.begin", "step": "6.2"}, {"event": "backup.done"},
              {"event": "gate.begin", "step": "6.3"}, {"event": "prepare.begin"}, {"event": "prepare.done"}]
    for index, kind in enumerate(["core", "plugin", "plugin", "theme"]):
        events.append({"event": "apply.begin", "type": kind, "index": index})
        steps = list(UPDATE)
        if kind == "core":
            steps[9:9] = ["upgrade_database.begin", "upgrade_database.done"]
        events += [{"event": step} for step in steps]
        events.append({"event": "apply.done", "type": kind, "index": index})
    events += [{"event": "gate.begin", "step": "6.5"}, {"event": "caches.purged"}, {"event": "gate.begin", "step": "6.6"},
               {"event": "gate.begin", "step": "6.7"}, {"event": "clean_up.begin"}, {"event": "clean_up.done"},
               {"event": "run.end"}]
    return events


def names(events: list[dict], numbers) -> list[str]:
    return [describe(events, n) for n in sorted(numbers)]


def test_every_state_change_of_the_first_update_of_each_type_is_a_kill_point():
    events = journal()
    chosen = names(events, state_changing(events))
    assert "7 gate.begin (6.3)" in chosen  # the last event before production changes
    assert "8 prepare.begin" in chosen
    for kind in ("core", "plugin", "theme"):
        assert sum(f"({kind})" in name and "apply.done" in name for name in chosen) == 1, kind
    core = [n for n in chosen if 10 <= int(n.split()[0]) <= 26]
    assert [n.split()[1] for n in core] == ["install.begin", "install.done", "upgrade_database.done",
                                            "maintenance_off.begin", "apply.done"]
    # The second plugin behaves as the first: its events are left to the sample.
    second_plugin = [e for e in events if e.get("index") == 2]
    assert second_plugin and not any(f"{events.index(e) + 1} " in " ".join(chosen) for e in second_plugin[1:])
    assert {"clean_up.begin", "clean_up.done"} <= {n.split()[1] for n in chosen}
    assert {"(6.5)", "(6.7)"} <= {n.split()[-1] for n in chosen}


def test_the_sample_depends_on_the_seed_and_replays_with_it():
    events = journal()
    first, again = kill_points(events, 7, extra=5), kill_points(events, 7, extra=5)
    assert first == again
    others = {tuple(kill_points(events, seed, extra=5).after_change) for seed in range(20)}
    assert len(others) > 10
    must = state_changing(events)
    for seed in range(20):
        points = kill_points(events, seed, extra=5)
        assert must <= set(points.before_change) | set(points.after_change)
        assert len(set(points.after_change) - must) == 5
        assert all(n < first_change(events) for n in points.before_change)
        assert all(n >= first_change(events) for n in points.after_change)


def test_the_full_matrix_is_every_event():
    events = journal()
    points = kill_points(events, 1, extra=5, full=True)
    assert points.before_change + points.after_change == list(range(1, len(events) + 1))


def test_only_narrows_the_state_changes_but_not_the_sample():
    events = journal()
    core = set(range(10, 27))
    points = kill_points(events, 3, extra=2, extra_before=0, only=core)
    assert len([n for n in points.after_change if n in core]) >= 5
    assert len(points.after_change) == len(state_changing(events) & core) + 2
