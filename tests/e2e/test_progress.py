"""Progress of the long steps when stderr is not a terminal: plain lines on stderr, nothing but JSON on stdout."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.helpers import site_entry, wpgate, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def config(bed, tmp_path_factory):
    site = bed.create_site("progress", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
    return write_config(tmp_path_factory.mktemp("progress"), {"progress": site_entry(site)})


def test_backup_and_restore_show_plain_progress_lines_and_keep_stdout_for_json(config):
    backup = wpgate("backup", "progress", "--json", config=config)
    assert backup.returncode == 0, backup.stderr
    manifest = json.loads(backup.stdout)  # stdout is the one JSON document, nothing else
    lines = backup.stderr.splitlines()
    assert "\x1b[" not in backup.stderr  # no terminal control codes when stderr is not a terminal
    assert any(re.fullmatch(r"    archive and database dump on the host: done in \d+\.\ds", line) for line in lines)
    size = manifest["parts"]["files.tar.gz"]["bytes"]
    assert not [line for line in lines if "copying database.sql.gz" in line]  # small and quick: no line
    done = [line for line in lines if line.startswith("    copying files.tar.gz off-site: ")]
    assert len(done) == 1 and re.fullmatch(r"    copying files.tar.gz off-site: [\d.]+ MB in \d+\.\ds", done[0]), done
    assert size > 1 << 20

    verify = wpgate("restore", manifest["id"], "--verify", "--json", config=config)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["restorable"] is True
    assert re.search(rf"^    restore of {manifest['id']} into scratch copies: done in \d+\.\ds$", verify.stderr, re.M)
