"""The order `plan` writes: plugins as staging updated them, read from their folders' change times to the
nanosecond, ties named and listed alphabetically; core first, themes last with parents first."""

from wpgate import planning
from wpgate.release import Artifact, Update

SHA = "a" * 64
SECOND = 1_000_000_000


def update(kind, slug, parent=None):
    return Update(kind, slug, "1.0", "1.1", Artifact(f"artifacts/{kind}-{slug}.zip", SHA), parent)


def test_change_times_are_read_to_the_nanosecond_as_integers():
    # A float would round these two apart times to one value.
    text = "1732900000.1234567891 banner\n1732900000.1234567899 footer\n1732900001 whole\nnot a line\n"
    assert planning.parse_change_times(text) == {"banner": 1732900000123456789, "footer": 1732900000123456789,
                                                 "whole": 1732900001000000000}
    assert planning.parse_change_times("1732900000.000000001 a\n1732900000.000000002 b\n") == {
        "a": 1732900000000000001, "b": 1732900000000000002}


def test_plugins_follow_staging_within_one_second_not_the_alphabet():
    """Issue 17: banner < footer < ledger < extra, all updated within the same second."""
    plugins = [update("plugin", slug) for slug in ("banner", "extra", "footer", "ledger")]
    base = 1732900000 * SECOND
    changed = {"banner": base + 100_000_000, "footer": base + 350_000_000, "ledger": base + 600_000_000,
               "extra": base + 850_000_000}
    order = planning.order_plugins(plugins, changed)
    assert [u.slug for u in order.updates] == ["banner", "footer", "ledger", "extra"]
    assert order.ties == []
    lines = order.lines("staging")
    assert lines[0].startswith("plugin order: as staging updated them, read from the change times (ctime)")
    assert "WordPress keeps no record of when it updated each plugin" in lines[0]
    assert lines[1] == "  1. banner  2024-11-29 17:06:40.100000000 UTC"
    assert not any(line.startswith("tie:") for line in lines)


def test_a_tie_is_said_and_its_plugins_listed_alphabetically():
    plugins = [update("plugin", slug) for slug in ("zeta", "alpha", "mid", "solo")]
    when = 1732900000 * SECOND
    order = planning.order_plugins(plugins, {"zeta": when, "alpha": when, "mid": when + 1, "solo": when - 1})
    assert [u.slug for u in order.updates] == ["solo", "alpha", "zeta", "mid"]
    assert order.ties == [["alpha", "zeta"]]
    [tie] = [line for line in order.lines("staging") if line.startswith("tie:")]
    assert tie.startswith("tie: alpha and zeta changed at the same moment on staging")
    assert "reorder them in the manifest's `updates` before approving" in tie


def test_plugins_whose_time_cannot_be_read_come_last_and_tie():
    plugins = [update("plugin", slug) for slug in ("b", "a", "c")]
    order = planning.order_plugins(plugins, {"c": 5})
    assert [u.slug for u in order.updates] == ["c", "a", "b"]
    assert order.ties == [["a", "b"]]
    assert "  2. a  time unknown" in order.lines("staging")


def test_one_plugin_needs_no_word_on_order():
    assert planning.order_plugins([update("plugin", "only")], {"only": 1}).lines("staging") == []


def test_core_first_plugins_as_given_then_parents_before_children():
    updates = [update("theme", "child", parent="parent"), update("plugin", "b"), update("theme", "another"),
               update("plugin", "a"), update("core", "wordpress"), update("theme", "parent")]
    plugins = [updates[1], updates[3]]  # staging's order: b, then a
    ordered = planning.in_order(updates, plugins)
    assert [u.slug for u in ordered] == ["wordpress", "b", "a", "another", "parent", "child"]
    assert [u.slug for u in planning.in_order(updates)][:3] == ["wordpress", "a", "b"]
