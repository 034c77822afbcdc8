"""wpgate.progress as the command line shows it (progress_view.py): bars on a terminal, plain lines elsewhere,
and never a word on stdout; without a display, nothing at all."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from wpgate import progress, progress_view
from wpgate.progress_view import ProgressView


@pytest.fixture
def plain(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress, "_display", ProgressView(Console(file=stream, force_terminal=False, width=100)))
    return stream


@pytest.fixture
def terminal(monkeypatch):
    stream = io.StringIO()
    view = ProgressView(Console(file=stream, force_terminal=True, width=100))
    monkeypatch.setattr(progress, "_display", view)
    stream.view = view
    return stream


def test_without_a_display_nothing_is_shown_and_a_countdown_still_counts(monkeypatch, capsys):
    monkeypatch.setattr(progress, "_display", None)
    with progress.countdown("watching", 0.2) as window, progress.stage("archiving"):
        while not window.expired:
            time.sleep(0.05)
    assert window.remaining() == 0
    assert capsys.readouterr() == ("", "")


def test_plain_lines_for_a_transfer_start_while_and_end(plain, monkeypatch, capsys):
    monkeypatch.setattr(progress_view, "PLAIN_EVERY", 0.05)
    moved = [0]
    with progress.transfer("uploading core.zip", 4 << 20, lambda: moved[0]):
        for step in range(1, 5):
            moved[0] = step << 20
            time.sleep(0.25)
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("uploading core.zip: ") and "% (" in lines[0]  # while it lasts…
    assert lines[-1].startswith("uploading core.zip: 4.0 MB in ")  # …and when it is over
    assert capsys.readouterr().out == ""


def test_a_small_quick_transfer_is_not_worth_a_line(plain):
    with progress.transfer("uploading plugin.zip", 2048, lambda: 2048):
        pass
    with progress.stage("checking"):
        pass
    assert plain.getvalue().splitlines() == [plain.getvalue().splitlines()[0]]
    assert plain.getvalue().startswith("checking: done in ")


def test_a_failed_step_says_it_stopped(plain):
    with pytest.raises(RuntimeError):
        with progress.stage("archiving"):
            raise RuntimeError("disk full")
    [line] = plain.getvalue().splitlines()
    assert line.startswith("archiving: stopped after ")


def test_a_countdown_for_the_monitor_window(plain):
    with progress.countdown("watching production", 0.3) as window:
        assert 0 < window.remaining() <= 0.3
        rounds = 0
        while not window.expired:
            rounds += 1
            window.note(f"round {rounds}: all pages healthy")
            time.sleep(0.1)
    assert window.remaining() == 0 and rounds >= 2
    lines = plain.getvalue().splitlines()
    assert lines[0] == "watching production (0.3s)…"
    assert lines[-1].startswith("watching production: round ") and "done in" in lines[-1]


def test_a_terminal_gets_a_live_bar_and_steps_can_overlap(terminal, capsys):
    with progress.stage("archive and database dump"):
        with progress.transfer("copying files.tar.gz off-site", 1000, lambda: 500):
            time.sleep(0.4)
    output = terminal.getvalue()
    assert "\x1b[" in output  # drawn with terminal control codes
    assert "copying files.tar.gz off-site" in output and "━" in output
    assert "copying files.tar.gz off-site: 1000 B in " in output
    assert "archive and database dump: done in " in output
    assert terminal.view._display is None  # the shared display stopped with its last step
    assert capsys.readouterr().out == ""
