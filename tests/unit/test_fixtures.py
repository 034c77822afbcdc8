"""The fixture plugins and themes are valid WordPress packages with the versions, headers, files
and markers the catalogue promises, and every PHP file of every version passes `php -l`."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from wpgate.testbed import fixtures
from wpgate.testbed.fixtures import FAULTS, PLUGINS, SABOTAGE, THEMES

PLUGIN_VERSIONS = [(slug, version) for slug, versions in PLUGINS.items() for version in versions]
THEME_VERSIONS = [(slug, version) for slug, versions in THEMES.items() for version in versions]


def header(text: str, name: str) -> str | None:
    """A WordPress file header's value, read the way get_file_data() reads it."""
    match = re.search(rf"^[ \t/*#@]*{re.escape(name)}:(.*)$", text, re.MULTILINE | re.IGNORECASE)
    return match[1].strip() if match else None


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_catalogue_lists_the_promised_fixtures_oldest_version_first():
    assert PLUGINS == {
        "wpgate-hello": ("1.0.0", "1.1.0", "1.2.0"),
        "wpgate-notes": ("1.0.0", "1.1.0", "2.0.0"),
        "wpgate-seo": ("3.0.0", "3.1.0"),
        "wpgate-shop": ("1.0.0", "2.0.0", "2.0.1", "2.1.0", "2.2.0"),
        "wpgate-faulty": ("1.0.0", "1.1.0", "2.0.1", "2.0.2", "2.0.3", "2.0.4", "2.0.5", "2.0.6", "2.0.7", "2.0.8",
                          "2.1.0"),
        "wpgate-noisy": ("1.0.0", "1.1.0"),
        "wpgate-clock": ("1.0.0", "1.1.0"),
        "wpgate-pagecache": ("1.0.0",),
        "wpgate-diskcache": ("1.0.0",),
    }
    assert THEMES == {"wpgate-parent": ("1.0.0", "1.1.0", "1.2.0"), "wpgate-child": ("1.0.0", "1.1.0")}
    for versions in [*PLUGINS.values(), *THEMES.values()]:
        assert list(versions) == sorted(versions, key=version_key)


def test_faults_cover_exactly_the_promised_faults_each_a_newer_faulty_version():
    assert set(FAULTS) == {
        "fatal_on_load", "fatal_while_rendering", "fatal_in_admin",
        "layout_broken", "content_gone", "fatal_in_log_only", "error_page_200",
    }
    assert set(SABOTAGE) == {"spoils_its_aside_copy"}
    every = {**FAULTS, **SABOTAGE}
    assert len(set(every.values())) == len(every)
    for slug, version in every.values():
        assert version in PLUGINS[slug]
        assert version_key(version) > version_key("1.1.0")


@pytest.mark.parametrize(("slug", "version"), PLUGIN_VERSIONS)
def test_plugin_main_file_has_wordpress_headers_and_its_version(tmp_path, slug, version):
    folder = fixtures.write_plugin(tmp_path, slug, version)
    assert folder == tmp_path / slug
    main = (folder / f"{slug}.php").read_text()
    assert main.startswith("<?php\n")
    assert header(main, "Plugin Name")
    assert header(main, "Version") == version
    assert header(main, "Requires at least") == "6.1"
    assert header(main, "Requires PHP") == "7.4"
    assert header(main, "Text Domain") == slug
    assert f"'{version}'" in main  # the version constant the marker and assets use
    assert "{{" not in "".join(path.read_text() for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize(("slug", "version"), THEME_VERSIONS)
def test_theme_stylesheet_has_wordpress_headers_and_its_version(tmp_path, slug, version):
    folder = fixtures.write_theme(tmp_path, slug, version)
    assert folder == tmp_path / slug
    style = (folder / "style.css").read_text()
    assert header(style, "Theme Name")
    assert header(style, "Version") == version
    assert header(style, "Requires at least") == "6.1"
    assert header(style, "Text Domain") == slug
    assert header(style, "Template") == ("wpgate-parent" if slug == "wpgate-child" else None)
    assert (folder / "functions.php").is_file()
    assert "{{" not in "".join(path.read_text() for path in folder.rglob("*") if path.is_file())


def test_parent_theme_renders_a_whole_document_with_the_loop(tmp_path):
    folder = fixtures.write_theme(tmp_path, "wpgate-parent", "1.0.0")
    for name in ("index.php", "header.php", "footer.php", "functions.php", "style.css"):
        assert (folder / name).is_file()
    page = "".join((folder / name).read_text() for name in ("header.php", "index.php", "footer.php"))
    for call in ("wp_head()", "body_class()", "wp_body_open()", "the_title()", "the_content()", "wp_footer()"):
        assert call in page
    assert page.rstrip().endswith("</html>")


def test_php_lint_passes_on_every_file_of_every_version(tmp_path):
    php = shutil.which("php")
    if php is None:  # an error, never a skip: CI would be green having linted nothing
        pytest.fail("php is not installed: install the Debian package php-cli")
    files = []
    for slug, version in PLUGIN_VERSIONS:
        files += fixtures.write_plugin(tmp_path / "plugins" / version, slug, version).rglob("*.php")
    for slug, version in THEME_VERSIONS:
        files += fixtures.write_theme(tmp_path / "themes" / version, slug, version).rglob("*.php")
    assert len(files) >= len(PLUGIN_VERSIONS) + len(THEME_VERSIONS)
    # A file that must fail proves the check would see a syntax error.
    broken = tmp_path / "broken.php"
    broken.write_text("<?php\nfunction (\n")
    # One php process lints them all: `php -l` takes one file at a time.
    script = (
        "foreach (array_slice($argv, 1) as $f) {"
        " exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($f) . ' 2>&1', $out, $rc);"
        " if ($rc) { echo 'FAILED ', $f, PHP_EOL, implode(PHP_EOL, $out), PHP_EOL; } $out = []; }"
    )
    result = subprocess.run([php, "-r", script, *map(str, [*files, broken])],
                            capture_output=True, text=True, timeout=120, check=True)
    failed = re.findall(r"^FAILED (.*)$", result.stdout, re.MULTILINE)
    assert failed == [str(broken)], result.stdout


@pytest.mark.parametrize("fault", sorted({**FAULTS, **SABOTAGE}))
def test_each_fault_version_carries_its_own_fault_code_and_healthy_versions_none(tmp_path, fault):
    every = {**FAULTS, **SABOTAGE}
    slug, version = every[fault]
    main = (fixtures.write_plugin(tmp_path / "broken", slug, version) / f"{slug}.php").read_text()
    assert f'Fault "{fault}"' in main
    assert sum(f'Fault "{other}"' in main for other in every) == 1
    healthy = (fixtures.write_plugin(tmp_path / "healthy", slug, "1.1.0") / f"{slug}.php").read_text()
    assert "Fault " not in healthy and "does_not_exist" not in healthy


def test_fault_code_is_what_each_fault_needs(tmp_path):
    def main(fault: str) -> str:
        slug, version = FAULTS[fault]
        return (fixtures.write_plugin(tmp_path / fault, slug, version) / f"{slug}.php").read_text()

    # fatal_on_load: the undefined call sits at the top level, not inside a function.
    on_load = main("fatal_on_load")
    assert re.search(r"^wpgate_faulty_function_that_does_not_exist\(\);$", on_load, re.MULTILINE)
    rendering = main("fatal_while_rendering")
    repeat = re.search(r'str_repeat\( "([^"]*)", (\d+) \)', rendering)
    assert len(repeat[1].replace("\\n", "\n")) * int(repeat[2]) > 8 * 1024
    assert rendering.index("flush();") < rendering.index("wpgate_faulty_function_that_does_not_exist();")
    assert "add_action( 'wp_footer', 'wpgate_faulty_break_while_rendering'" in rendering
    assert "add_action( 'admin_init'" in main("fatal_in_admin")
    assert "background:#000" in main("layout_broken")
    content_gone = main("content_gone")
    for hook in ("the_title", "the_content", "document_title_parts"):
        assert f"'{hook}'" in content_gone
    log_only = main("fatal_in_log_only")
    assert "fastcgi_finish_request();" in log_only and "add_action( 'shutdown'" in log_only


def test_writing_replaces_the_folder_and_hello_changes_its_file_set(tmp_path):
    def files(version: str) -> set[str]:
        folder = fixtures.write_plugin(tmp_path, "wpgate-hello", version)
        return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}

    assert files("1.0.0") == {"wpgate-hello.php", "assets/hello.css", "includes/legacy.php"}
    (tmp_path / "wpgate-hello" / "left-over.txt").write_text("from before")
    assert files("1.1.0") == {"wpgate-hello.php", "assets/hello.css"}
    assert files("1.2.0") == {"wpgate-hello.php", "assets/hello.css", "includes/extra.php"}
    main = (tmp_path / "wpgate-hello" / "wpgate-hello.php").read_text()
    assert "includes/extra.php" in main and "includes/legacy.php" not in main
    assert "'assets/hello.css'" in main and "WPGATE_HELLO_VERSION );" in main  # ?ver=VERSION


def test_shop_versions_migrate_the_database_step_by_step(tmp_path):
    def main(version: str) -> str:
        return (fixtures.write_plugin(tmp_path / version, "wpgate-shop", version) / "wpgate-shop.php").read_text()

    assert "dbDelta" not in main("1.0.0")
    for version, db_version in (("2.0.0", 2), ("2.0.1", 2), ("2.1.0", 3), ("2.2.0", 3)):
        code = main(version)
        assert f"define( 'WPGATE_SHOP_DB_VERSION', (int) '{db_version}' );" in code
        assert "dbDelta" in code and "wpgate_shop_orders" in code and "'plugins_loaded'" in code
    assert "does_not_exist" in main("2.1.0")
    assert not any("does_not_exist" in main(version) for version in ("2.0.0", "2.0.1", "2.2.0"))
    for version in PLUGINS["wpgate-shop"]:
        assert "'upgrader_process_complete'" in main(version)
        assert "wpgate_shop_upgraded_by_upgrader" in main(version)


def test_markers_are_distinct_and_printed_by_each_version(tmp_path):
    markers = [fixtures.plugin_marker(slug, version) for slug, version in PLUGIN_VERSIONS]
    markers += [fixtures.theme_marker(slug, version) for slug, version in THEME_VERSIONS]
    assert len(set(markers)) == len(markers)
    assert fixtures.plugin_marker("wpgate-hello", "1.1.0") == "<!-- wpgate-hello 1.1.0 -->"
    assert fixtures.theme_marker("wpgate-child", "1.0.0") == "<!-- wpgate-child 1.0.0 -->"
    # The PHP prints the marker from its version constant: "<!-- SLUG " . CONSTANT . " -->".
    for slug, version in PLUGIN_VERSIONS:
        main = (fixtures.write_plugin(tmp_path / version, slug, version) / f"{slug}.php").read_text()
        assert f"echo '<!-- {slug} ' . " in main and " -->\\n\";" in main
    for slug, version in THEME_VERSIONS:
        functions = (fixtures.write_theme(tmp_path / version, slug, version) / "functions.php").read_text()
        assert f"echo '<!-- {slug} ' . " in functions


@pytest.mark.parametrize(
    ("call", "arguments", "named"),
    [
        (fixtures.write_plugin, ("wpgate-nope", "1.0.0"), "wpgate-hello"),
        (fixtures.write_plugin, ("wpgate-hello", "9.9.9"), "1.2.0"),
        (fixtures.write_theme, ("wpgate-hello", "1.0.0"), "wpgate-parent"),
        (fixtures.write_theme, ("wpgate-parent", "2.0"), "1.1.0"),
    ],
)
def test_unknown_slug_or_version_is_refused_naming_what_exists(tmp_path, call, arguments, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        call(tmp_path, *arguments)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("call", "arguments"),
    [(fixtures.plugin_marker, ("nope", "1.0.0")), (fixtures.plugin_marker, ("wpgate-seo", "1.0.0")),
     (fixtures.theme_marker, ("wpgate-child", "1.2.0")), (fixtures.theme_marker, ("wpgate-hello", "1.0.0"))],
)
def test_markers_of_unknown_fixtures_are_refused(call, arguments):
    with pytest.raises(ValueError):
        call(*arguments)


def test_a_rewritten_file_never_keeps_the_modification_second_of_the_one_it_replaces(tmp_path):
    # OPcache with validate_timestamps compares whole seconds: same second, same (stale) code.
    folder = fixtures.write_plugin(tmp_path, "wpgate-faulty", "1.1.0")
    main = folder / "wpgate-faulty.php"
    before = int(main.stat().st_mtime)
    fixtures.write_plugin(tmp_path, "wpgate-faulty", "2.0.2")
    assert int(main.stat().st_mtime) > before
    assert "2.0.2" in main.read_text()
