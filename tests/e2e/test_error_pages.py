"""`wpgate check` (gate 6.6's checks) on WordPress's error pages served with status 200: a plugin that
calls wp_die() without a status gives visitors an error page and the web server a 200; the pages check
reads the page itself and fails on it."""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import site_entry, wpgate, write_config
from wpgate.testbed import fixtures
from wpgate.testbed.bed import http_get
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(bed):
    # nginx + php-fpm checks file times on every request: a plugin written by the test runs at once.
    made = bed.create_site("error-pages", core="6.5.5", server="nginx", plugins={"wpgate-faulty": "1.1.0"})
    yield made
    made.stop()


def test_an_error_page_with_status_200_fails_the_pages_check(site, tmp_path):
    # No expected content: only the error-page markers can tell these pages from healthy ones.
    config = write_config(tmp_path, {"production": site_entry(site, checks={"pages": ["/", "/sample-page/"]})},
                          backups=False)
    healthy = wpgate("check", "production", "--json", config=config)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["status"] == "healthy"

    site.install_plugin(*FAULTS["error_page_200"])
    try:
        # What visitors get: status 200, whole documents, WordPress's error pages.
        status, _, home = http_get(site.url + "/")
        assert status == 200 and "There has been a critical error on this website" in home
        assert "</html>" in home and fixtures.plugin_marker(*FAULTS["error_page_200"]) not in home
        status, _, page = http_get(site.url + "/sample-page/")
        assert status == 200 and 'id="error-page"' in page and "critical error" not in page

        broken = wpgate("check", "production", "--json", config=config)
        assert broken.returncode == 3, broken.stderr
        found = json.loads(broken.stdout)
        assert found["status"] != "healthy"
        problems = {problem["page"]: problem["problem"] for problem in found["checks"]["pages"]["problems"]}
        assert problems["/"].startswith("answered 200 but shows WordPress's critical-error page"), problems
        assert problems["/sample-page/"] == "answered 200 but shows a wp_die() error page", problems
        human = wpgate("check", "production", config=config)
        assert human.returncode == 3 and "Traceback" not in human.stderr
        assert "page /: answered 200 but shows WordPress's critical-error page" in human.stderr, human.stderr
        assert "page /sample-page/: answered 200 but shows a wp_die() error page" in human.stderr, human.stderr
    finally:
        site.install_plugin("wpgate-faulty", "1.1.0")
