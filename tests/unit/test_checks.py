"""The monitor's readings of pages, logs and screenshots, without a site: what counts as broken, and what not."""

from __future__ import annotations

import pytest
from PIL import Image

from wpgate import config
from wpgate.checks import Problem, html
from wpgate.checks.error_log import fatal_lines
from wpgate.checks.layout import compare, page_name
from wpgate.errors import ConfigError
from wpgate.session import SiteSession

SITE = "http://127.0.0.1:8080"


def test_php_error_text_is_found_with_and_without_html_errors():
    body = ("<p>ok</p><br />\n<b>Warning</b>:  Undefined variable $x in <b>/srv/wp/wp-content/plugins/a/a.php</b> "
            "on line <b>12</b><br />\nFatal error: Uncaught Error: boom in /srv/wp/b.php on line 3")
    found = html.php_errors(body)
    assert [(e["level"], e["file"], e["line"]) for e in found] == [
        ("Warning", "/srv/wp/wp-content/plugins/a/a.php", "12"), ("Fatal error", "/srv/wp/b.php", "3")]
    assert found[1]["message"] == "Uncaught Error: boom"


def test_words_alone_are_not_php_error_text():
    assert html.php_errors("<p>Warning: the bridge is closed. Fatal error: none, a novel.</p>") == []


def test_wordpress_error_pages_are_told_apart_from_maintenance():
    assert "critical-error" in html.fatal_marker("<p>There has been a critical error on this website.</p>")
    assert "wp_die" in html.fatal_marker('<body id="error-page"><div class="wp-die-message">no</div>')
    assert html.fatal_marker("<html><body class='home'>fine</body></html>") is None
    maintenance = "<h1>Briefly unavailable for scheduled maintenance. Check back in a minute.</h1>"
    assert html.is_maintenance(503, maintenance)
    assert not html.is_maintenance(500, maintenance) and not html.is_maintenance(503, "Service Unavailable")


def test_a_page_without_its_closing_tag_is_incomplete():
    assert html.is_complete("<html><body></body></html>\n")
    assert not html.is_complete("<html><body><p>cut off here")


def test_same_site_assets_only_and_each_once():
    body = (f'<link rel="stylesheet" href="{SITE}/wp-content/a.css?ver=1.0&#038;x=1">'
            '<link rel="preload" href="/skip.css"><link rel="stylesheet" href="https://cdn.example.com/b.css">'
            '<script src="/wp-includes/js/c.js?ver=6"></script><script>inline()</script>'
            '<img src="img/d.png"><img src="data:image/png;base64,AAAA"><img src="img/d.png">')
    assert html.same_site_assets(body, f"{SITE}/sample-page/", SITE) == [
        ("stylesheet", f"{SITE}/wp-content/a.css?ver=1.0&x=1"),
        ("script", f"{SITE}/wp-includes/js/c.js?ver=6"),
        ("image", f"{SITE}/sample-page/img/d.png")]


def test_admin_error_notices():
    body = ('<div class="notice notice-error is-dismissible"><p>Plugin <b>x</b> failed.</p></div>'
            '<div class="notice notice-warning"><p>just a warning</p></div>'
            '<div class="error hidden"><p>template</p></div>')
    assert html.error_notices(body) == ["Plugin x failed."]


def test_fatal_lines_of_the_error_log():
    log = ("[26-Nov-2026 10:00:00 UTC] PHP Deprecated:  old thing in /a.php on line 1\n"
           "[26-Nov-2026 10:00:01 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function f() in /b.php:3\n"
           "Stack trace:\n#0 {main}\n"
           "[26-Nov-2026 10:00:02 UTC] PHP Parse error:  syntax error, unexpected '}' in /c.php on line 9\n"
           "2026/11/26 10:00:03 [error] 12#12: FastCGI sent in stderr: \"PHP message: PHP Fatal error:  x\"\n"
           "[26-Nov-2026 10:00:04 UTC] PHP Warning:  fatal error handling is on in /d.php on line 2\n")
    lines = fatal_lines(log)
    assert len(lines) == 3 and "Uncaught Error" in lines[0] and "Parse error" in lines[1] and "FastCGI" in lines[2]


def test_pixel_diff_counts_changed_pixels_and_extra_height(tmp_path):
    before, after, taller = tmp_path / "before.png", tmp_path / "after.png", tmp_path / "taller.png"
    Image.new("RGB", (100, 100), (255, 255, 255)).save(before)
    changed = Image.new("RGB", (100, 100), (255, 255, 255))
    changed.paste((0, 0, 0), (0, 0, 10, 10))       # 100 pixels black
    changed.paste((250, 250, 250), (50, 50, 60, 60))  # 100 pixels barely different: anti-aliasing, not a change
    changed.save(after)
    assert compare(before, after, tmp_path / "diff.png") == pytest.approx(0.01)
    assert (tmp_path / "diff.png").is_file()
    Image.new("RGB", (100, 150), (255, 255, 255)).save(taller)
    assert compare(before, taller, tmp_path / "diff2.png") == pytest.approx(50 * 100 / (150 * 100))
    assert compare(before, before, tmp_path / "same.png") == 0.0


def test_page_names_for_screenshot_files():
    assert [page_name(p) for p in ("/", "/sample-page/", "/shop/?a=1&b=2")] == ["home", "sample-page", "shop-a-1-b-2"]


def test_problem_lines_name_the_page_and_check():
    assert Problem("pages", "answered 500", "/").line() == "page /: answered 500 (pages check)"
    assert Problem("error_log", "new PHP error").line() == "error log: new PHP error (error_log check)"


def test_checks_defaults_and_new_keys(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text("sites:\n  p: {path: /srv/p, url: 'http://p.example'}\n"
                    "  q: {path: /srv/q, url: 'http://q.example', checks: {pages: [/], content: {/shop/: [Buy]},"
                    " error_log: /var/log/php.log, visual_threshold: 0.02}}\n")
    settings = config.load(path)
    default = settings.site("p").checks
    assert default.pages == ["/"] and default.window == 30 and default.visual_threshold is None
    assert default.error_log is None and default.admin is None
    given = settings.site("q").checks
    assert given.all_pages == ["/", "/shop/"] and given.error_log == "/var/log/php.log"
    path.write_text("sites:\n  p: {path: /srv/p, url: 'http://p.example', checks: {error_log: php.log,"
                    " content: {shop: [x]}}}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert any("checks.error_log" in problem for problem in caught.value.problems)
    assert any("checks.content" in problem for problem in caught.value.problems)


class _LogWatch:
    """What the error-log check uses of a Watch: the transport, its state, and the config naming the log."""

    def __init__(self, path):
        from types import SimpleNamespace

        from wpgate.transports import LocalTransport

        self.transport = LocalTransport()
        self.config = SimpleNamespace(error_log=str(path))
        self.state = {}

    def settle(self):
        pass


FATAL = "[26-Nov-2026 10:00:01 UTC] PHP Fatal error:  Uncaught Error: boom in /b.php:3\n"


def test_the_error_log_is_read_from_its_offset_through_rotation(tmp_path):
    from wpgate.checks.error_log import ErrorLogCheck

    log = tmp_path / "debug.log"
    log.write_text("[26-Nov-2026 09:00:00 UTC] PHP Fatal error:  an old one in /a.php:1\n")
    check, watch = ErrorLogCheck(), _LogWatch(log)
    watch.state["error_log"] = check.baseline(watch)
    assert check.run(watch, "x").status == "passed"  # what was there before does not count

    with log.open("a") as file:
        file.write(FATAL + "[26-Nov-2026 10:00:02 UTC] PHP Fatal error:  half a li")
    found = check.run(watch, "x")
    assert found.status == "failed" and [p.subject for p in found.problems] == ["PHP Fatal error:  Uncaught Error: boom in /b.php:3"]
    assert check.run(watch, "x").status == "passed"  # read once; the unfinished line waits
    with log.open("a") as file:
        file.write("ne in /c.php:4\n")
    assert "half a line" in check.run(watch, "x").problems[0].what

    log.rename(tmp_path / "debug.log.1")  # rotated: a new, shorter file
    log.write_text(FATAL)
    rotated = check.run(watch, "x")
    assert rotated.status == "failed" and rotated.evidence["rotated"]


def test_a_log_that_does_not_exist_yet_is_read_once_it_does(tmp_path):
    from wpgate.checks.error_log import ErrorLogCheck

    log = tmp_path / "debug.log"
    check, watch = ErrorLogCheck(), _LogWatch(log)
    watch.state["error_log"] = check.baseline(watch)
    assert check.run(watch, "x").status == "passed"
    log.write_text(FATAL)
    assert check.run(watch, "x").status == "failed"


def test_problems_known_before_the_first_change_are_not_blamed_on_the_release(tmp_path, monkeypatch):
    from wpgate import checks
    from wpgate.checks import Check, Result, Watch

    class BrokenImage(Check):
        name = "pages"

        def run(self, watch, label, quick=False):
            problems = [Problem("pages", "image /a.png answered 404", "/", "asset", "/a.png")]
            if label == "after":
                problems.append(Problem("pages", "answered 500", "/", "status", "500"))
            return Result("pages", "failed", "", problems)

    monkeypatch.setattr(checks, "registry", lambda: [BrokenImage])
    path = tmp_path / "wpgate.yml"
    path.write_text("sites:\n  p: {path: /srv/p, url: 'http://p.example'}\n")
    settings = config.load(path)
    said = []
    with Watch(SiteSession("p", settings.site("p"), None, None, said.append), settings, None) as watch:  # type: ignore[arg-type]
        watch.remember(watch.run("baseline")[0].problems)
        same = watch.run("again")
        assert same[0].status == "passed" and same[0].evidence["known_before"] == [
            "page /: image /a.png answered 404 (pages check)"]
        worse = watch.run("after")
        assert worse[0].status == "failed" and [p.what for p in Watch.problems(worse)] == ["answered 500"]
    assert said == ["  note: before any change, page /: image /a.png answered 404 (pages check)"]


def test_screenshot_names_are_unique_per_page():
    from wpgate.checks.layout import page_names

    assert page_names(["/", "/shop", "/shop/", "/home/"]) == {
        "/": "home", "/shop": "shop", "/shop/": "shop-2", "/home/": "home-2"}
