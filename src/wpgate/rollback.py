"""Rollback: put every changed component back from what apply kept aside, then prove the site is as before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wpgate import artifacts, inventory, rollback_database, upgrader
from wpgate.aside import Aside
from wpgate.caches import CacheSite, PurgeFailed
from wpgate.caches import layers as cache_layers
from wpgate.caches.opcache import Opcache
from wpgate.caches.verify import Expectation
from wpgate.command import Command
from wpgate.errors import BadInput, WpgateError
from wpgate.gates.apply import DRAIN_SECONDS
from wpgate.gates.completion import differences, site_answers
from wpgate.inventory import Inventory
from wpgate.release import SLUG
from wpgate.run import Run, UpdateRecord, UpdateStatus
from wpgate.session import OnSite, SiteSession
from wpgate.transports import Transport

# Puts a plugin's or a theme's folder back as apply swapped it in: the copy kept aside replaces what is live by
# two renames, one right after the other in one PHP process (so no visitor meets the folder missing for longer
# than that), what it replaces going to a trash folder beside the copy, removed afterwards. Run only when the copy
# kept aside exists: that copy moves as a whole, so where it exists it is whole. Run again after a kill at any
# point, it goes on where it stopped.
_PUT_BACK_FOLDER = r"""
set -e
live=$1 aside=$2 trash=$3 php=$4
rm -rf -- "$trash"
"$php" -n -r '
[, $live, $aside, $trash] = $argv;
$had = file_exists( $live ) || is_link( $live );
if ( $had && ! @rename( $live, $trash ) ) {
	fwrite( STDERR, "cannot move $live out of the way: " . error_get_last()["message"] . "\n" );
	exit( 1 );
}
if ( ! @rename( $aside, $live ) ) {
	fwrite( STDERR, "cannot move $aside to $live: " . error_get_last()["message"] . "\n" );
	if ( $had ) {
		@rename( $trash, $live );
	}
	exit( 1 );
}
' -- "$live" "$aside" "$trash"
rm -rf -- "$trash"
"""
# Puts core back name by name, in one PHP process: each name kept aside replaces the live one (a name no longer
# aside was put back already: the live one stays). A file replaces the live file by one rename, which is atomic:
# the web server never finds index.php or wp-login.php missing (nginx answered 404 in that gap). A folder
# (wp-admin, wp-includes) takes two renames, one right after the other, the live one going to a trash folder.
# Then the names the new core added at the root go. Run again after a kill at any point, it goes on where it
# stopped and never removes a live name it has nothing to put in its place for, but those the old core did not have.
_PUT_BACK_CORE = r"""
set -e
live=$1 aside=$2 trash=$3 php=$4
shift 4
rm -rf -- "$trash"
mkdir -m 700 -- "$trash"
"$php" -n -r '
[, $live, $aside, $trash, $kept] = array_slice( $argv, 0, 5 );
$names = array_slice( $argv, 5 );
function wpgate_move( $from, $to ) {
	if ( ! @rename( $from, $to ) ) {
		fwrite( STDERR, "cannot move $from to $to: " . error_get_last()["message"] . "\n" );
		exit( 1 );
	}
}
foreach ( $names as $number => $name ) {
	$now = "$live/$name";
	$has = file_exists( $now ) || is_link( $now );
	if ( $number < (int) $kept ) {
		$old = "$aside/$name";
		if ( ! file_exists( $old ) && ! is_link( $old ) ) {
			continue;
		}
		if ( $has && ( is_dir( $old ) || ( is_dir( $now ) && ! is_link( $now ) ) ) ) {
			wpgate_move( $now, "$trash/$name" );
		}
		wpgate_move( $old, $now );
	} elseif ( $has ) {
		wpgate_move( $now, "$trash/$name" );
	}
}
' -- "$live" "$aside" "$trash" "$@"
rm -rf -- "$trash"
"""


@dataclass
class Target(OnSite):
    """The site being rolled back and the run whose changes are undone."""

    session: SiteSession
    run: Run
    before: Inventory
    aside: Aside  # where the run kept the old versions (aside.py)
    database_mode: str | None = None  # rollback_database.KEEP or RESTORE: the person's decision
    database_plan: Any = None  # a rollback_database.Plan made before (the prompt's): the same decision

    def drain(self) -> dict[str, Any]:
        """Wait out the requests the web server was running when maintenance went up (gates/apply.py's
        DRAIN_SECONDS where it cannot tell); what it saw."""
        return Opcache(_cache_site(self)).drain(DRAIN_SECONDS)


def changed_updates(updates: list[UpdateRecord]) -> list[UpdateRecord]:
    """The updates whose install began: what may differ from the pre-deployment state."""
    return [entry for entry in updates if entry.install_began]


def attempt(target: Target) -> list[str]:
    """roll_back(), its failure one of the problems, the attempt recorded in the run's report (`rollback`)."""
    try:
        problems = roll_back(target)
    except WpgateError as error:
        problems = [f"the rollback itself failed: {error}"]
    target.run.extra["rollback"] = {"attempted": True, "problems": problems}
    return problems


def roll_back(target: Target) -> list[str]:
    """Undo the run's changes in reverse order and prove the result; the problems left, if any."""
    run = target.run
    problems: list[str] = []
    with run.action("rollback") as done:
        # Core's put-back and a database restore turn maintenance on; off once both are done and visitors'
        # rows are back.
        try:
            with target.aside.opened(target.transport, run.id):
                problems += _put_back_all(target)
            problems += rollback_database.roll_back(target, target.database_mode, target.database_plan)
        finally:
            try:
                with run.action("maintenance_off"):
                    upgrader.maintenance_off(target.bridge, target.before.content_dir)
            except WpgateError as error:
                problems.append(f"maintenance mode could not be turned off: {error}")
        problems += purge_caches(target)
        problems += prove(target)
        done["problems"] = problems
        if not problems:  # proved: what was kept aside for this run is no longer needed
            workdir = target.aside.run_folder(run.id)
            with run.action("remove_workdir", workdir=workdir):
                target.aside.remove_run_folder(target.transport, run.id)
    run.write_report()
    return problems


def _put_back_all(target: Target) -> list[str]:
    """Each changed component back, in reverse order, each followed by the web server's OPcache reset, as
    apply did after each swap: visitors get the old version whole, never its files beside the new code."""
    run, problems = target.run, []
    web_problem: str | None = None
    for entry in reversed(changed_updates(run.updates)):
        label = f"{entry.type} {entry.slug}"
        target.say(f"  putting back {label} {entry.from_version}")
        try:
            if entry.type == "core":
                _maintenance_for_core(target)
            with run.action("put_back", type=entry.type, slug=entry.slug, aside=entry.aside):
                _put_back(target, entry)
            entry.status = UpdateStatus.ROLLED_BACK
        except WpgateError as error:
            problems.append(f"{label}: could not be put back: {error}")
            continue
        if web_problem is None:
            try:
                with run.action("web_opcache", type=entry.type, slug=entry.slug) as done:
                    done["result"] = Opcache(_cache_site(target)).purge().result
            except WpgateError as error:  # said once; the caches' purge tries again and reports it
                web_problem = str(error)
                target.say(f"  the web server's OPcache could not be reset: {error}")
    return problems


def _maintenance_for_core(target: Target) -> None:
    """Core goes back as it came in: behind WordPress's maintenance page, once the requests that began
    before it have finished (the drain), so that no visitor gets a page built from two core versions (or
    from old files and the code the web server compiled from new ones). It stays on through the
    database's restore; roll_back turns it off however the rollback ends."""
    with target.run.action("maintenance_on") as done:
        done["drain"] = upgrader.maintenance_on_drained(target.bridge, target.drain, target.before.content_dir)


def _put_back(target: Target, entry: UpdateRecord) -> None:
    """One component back from what apply kept aside. Idempotent: run again after a kill at any point, it
    goes on where it stopped; a copy that is gone or empty is never a reason to remove live files."""
    transport, live, aside = target.transport, entry.live, entry.aside
    label = f"{entry.type} {entry.slug}"
    was = target.before.version_of(entry.type, entry.slug)
    if entry.type == "core":
        _put_back_core(target, entry, label, was)
        return
    if not transport.exists(aside):
        _put_back_already(target, entry, label, was, aside)
        return
    if not _listing(transport, aside):
        raise WpgateError(f"the copy of {label} kept aside ({aside}) is empty: nothing of {label} was changed")
    transport.check(Command.of("sh", "-c", _PUT_BACK_FOLDER, "sh", live, aside, f"{aside}.replaced", target.site.php))


def _put_back_core(target: Target, entry: UpdateRecord, label: str, was: str | None) -> None:
    """Core back name by name from the copy kept aside, checked first: the copy holds only names of the old
    core, and every name of the old core is either still aside or live (put back already)."""
    transport, live, aside = target.transport, entry.live, entry.aside
    kept = _listing(transport, aside)
    names = core_names(entry)
    if names is None:  # a run recorded before wpgate kept the names: only what is aside is put back
        names = kept
    strangers = sorted(set(kept) - set(names))
    if strangers:
        raise WpgateError(f"the copy of core kept aside ({aside}) holds {', '.join(strangers[:5])}, which the old "
                          "core did not have: nothing of core was changed")
    lost = sorted(set(names) - set(kept) - set(_listing(transport, live)))
    if lost:
        raise WpgateError(f"core's {', '.join(lost[:5])} is neither in the copy kept aside ({aside}) nor in "
                          f"{live}: nothing of core was changed")
    added = _added_core_files(transport, live, names) if names else []
    if not kept:  # nothing left aside: put back already, or the copy was lost; only the version tells
        _put_back_already(target, entry, label, was, aside)
        if not added:
            return
    transport.check(Command.of("sh", "-c", _PUT_BACK_CORE, "sh", live, aside, f"{aside}.replaced", target.site.php,
                               str(len(kept)), *kept, *added))


def _put_back_already(target: Target, entry: UpdateRecord, label: str, was: str | None, aside: str) -> None:
    """No copy left to put back: right when the run stopped before swapping the component in, or an earlier
    rollback put it back (either way its version is the old one), else a person must look: nothing is changed."""
    now = _version_now(target, entry)
    if now != was:
        raise WpgateError(f"the copy kept aside ({aside}) is gone and the site has {label} {now or 'missing'}, "
                          f"not {was}: nothing of it was changed")
    target.say(f"    {label} is {was} already (never replaced, or put back by an earlier rollback)")


def _version_now(target: Target, entry: UpdateRecord) -> str | None:
    return inventory.read(target.bridge).version_of(entry.type, entry.slug)


def core_names(entry: UpdateRecord) -> list[str] | None:
    """The names the old core had at the root (its folders and files), as apply recorded them; None for a
    run recorded before wpgate kept them."""
    names = entry.aside_names
    if names is None:
        return None
    return [name for name in names if isinstance(name, str) and artifacts.is_core_name(name)]


def _listing(transport: Transport, folder: str) -> list[str]:
    """The names in a folder on the host; none when it does not exist."""
    result = transport.run(Command.of("find", folder, "-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\n"))
    if not result.ok:
        if transport.exists(folder):
            raise WpgateError(f"{folder}: cannot list it: {result.error_text()}")
        return []
    return sorted(result.text().splitlines())


def _added_core_files(transport: Transport, live: str, names: list[str]) -> list[str]:
    """Core files at the root that the old core did not have: the new version added them."""
    return [name for name in artifacts.core_root_files(transport, live) if name not in names]


def check_record(target: Target) -> None:
    """A run's record read back from disk (report.json) names, for each change, where the component lives
    and where its old copy was kept; those paths drive renames and removals on the host. They must be this
    site's own: where the site keeps that component, and the run's folder beside it. Raises BadInput,
    changing nothing, when they are not."""
    run, paths = target.run, target.before.data["paths"]
    root = _real_path(target.transport, target.site.path)
    if _real_path(target.transport, paths["abspath"]) != root:
        raise BadInput(f"run {run.id}: its inventory-before.json puts WordPress at {paths['abspath']}, not at "
                       f"{target.site.path} (the config's path for site {target.site_name}): nothing was changed")
    try:
        now = inventory.read(target.bridge).data["paths"]
    except WpgateError:  # WordPress does not load (core half put back): the run's folders must be inside the root
        for key in ("content", "plugins", "themes"):
            if _real_path(target.transport, paths[key]) != root and \
                    not _real_path(target.transport, paths[key]).startswith(root.rstrip("/") + "/"):
                raise BadInput(f"run {run.id}: its inventory-before.json puts the {key} folder at {paths[key]}, "
                               f"outside {target.site.path}, and WordPress does not load to confirm it: nothing "
                               "was changed")
    else:
        moved = [key for key in ("abspath", "content", "plugins", "themes") if now.get(key) != paths.get(key)]
        if moved:
            key = moved[0]
            raise BadInput(f"run {run.id}: its inventory-before.json puts the {key} folder at {paths.get(key)}; the "
                           f"site has it at {now.get(key)}: nothing was changed")
    for entry in changed_updates(run.updates):
        kind, slug = entry.type, entry.slug
        if kind not in ("core", "plugin", "theme") or not isinstance(slug, str) or not SLUG.fullmatch(slug):
            raise BadInput(f"run {run.id}: its report names an update {kind!r} {slug!r}, which is not a component: "
                           "nothing was changed")
        live = paths["abspath"] if kind == "core" else f"{paths[kind + 's']}/{slug}"
        aside = target.aside.kept(run.id, kind, slug)
        for key, expected in (("live", live), ("aside", aside)):
            if getattr(entry, key) != expected:
                raise BadInput(f"run {run.id}: its report says {kind} {slug} {key} is {getattr(entry, key)}; this site's is "
                               f"{expected}: the run's record was changed; nothing was changed")
        names = entry.aside_names
        if kind == "core" and names is not None and (
                not isinstance(names, list) or not all(isinstance(n, str) and artifacts.is_core_name(n) for n in names)
                or not set(artifacts.CORE_FOLDERS) <= set(names)):
            raise BadInput(f"run {run.id}: its report lists names kept aside for core that are not core's own: "
                           "nothing was changed")


def _real_path(transport: Transport, path: str) -> str:
    return transport.check(Command.of("realpath", "-m", "--", path)).text().strip()


def _cache_site(target: Target) -> CacheSite:
    return CacheSite(target.session)


def purge_caches(target: Target) -> list[str]:
    """Every cache layer purged, so that visitors get the site put back, not the release the
    caches kept; each page must show the versions put back. A failure is a problem to report,
    the rollback goes on to its proof."""
    site = _cache_site(target)
    expectations = [Expectation(entry.type, entry.slug, entry.to_version, entry.from_version)
                    for entry in changed_updates(target.run.updates) if entry.status == UpdateStatus.ROLLED_BACK]
    try:
        evidence = cache_layers.purge_and_verify(site, expectations, target.run.event)
    except PurgeFailed as failure:
        target.run.extra["rollback_caches"] = failure.evidence
        return [f"caches after the rollback: {failure.message}"]
    except WpgateError as error:
        return [f"caches after the rollback could not be purged: {error}"]
    target.run.extra["rollback_caches"] = evidence
    return []


def prove(target: Target) -> list[str]:
    """The site is back at its pre-deployment state: inventory, maintenance, and it answers."""
    now = inventory.read(target.bridge)
    target.run.save_json("inventory-after-rollback.json", now.data)
    problems = differences(target.before, now, {})
    state = upgrader.site_state(target.bridge)
    if state.get("maintenance"):
        problems.append("a .maintenance file is left")
    answers = site_answers(target.site.url)
    problems += [problem for problem in answers.values() if problem]
    return problems
