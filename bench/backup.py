"""Benchmark: `wpgate backup` against the dump client piped to gzip plus `tar czf` of the root, on the same
site of the test bed, in the same run; then a second `wpgate backup` of the unchanged site.

    .venv/bin/python bench/backup.py [--rounds N] [--uploads-mb MB] [--posts N]

The site gets MB of uploads (three quarters random bytes, as photos are; a quarter text) and N posts.
The baseline is what a maintainer's backup script does on the host, one step after the other:

    mariadb-dump --single-transaction --quick --routines --triggers --hex-blob DB | gzip > db.sql.gz
    tar czf files.tar.gz -C ROOT .

with nothing verified and no second copy. `wpgate backup` also lists every table's rows and checksum,
reads the inventory, hashes every part, copies them off-site and checks each copy's sha256.
Rounds alternate which of the two runs first, so that the page cache favours neither. The second
backup finds the files unchanged and links the first one's archive instead of making it again.

    .venv/bin/python bench/backup.py --engines [--rounds N] [--uploads-mb MB] [--posts N]

compares the two engines instead: a first backup, then a repeat backup after 1% of the files and 1% of the
posts changed, with `engine: archive` (off-site: a folder), `engine: restic` (a local repository, off-site a
second local repository) and the baseline above, each measured in the same round on the same site; printed:
seconds and bytes stored (what each backup added on the host), and the ratios restic / archive. restic's
repeat backup costs a few seconds whatever the size (a key derivation per restic process), so its ratio to
the archive engine's depends on the site: measure at a realistic size (`--uploads-mb 2000`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from wpgate.testbed import TestBed

WPGATE = Path(sys.executable).with_name("wpgate")


def populate(site, uploads_mb: int, posts: int) -> None:
    uploads = Path(site.path) / "wp-content" / "uploads" / "bench"
    uploads.mkdir(parents=True, exist_ok=True)
    words = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 13000)[:1 << 20]
    for number in range(uploads_mb):
        if number % 4 == 3:
            (uploads / f"notes-{number}.txt").write_bytes(words)
        else:
            (uploads / f"photo-{number}.jpg").write_bytes(os.urandom(1 << 20))
    site.php(f"""
for ($i = 0; $i < {posts}; $i++) {{
    wp_insert_post(array('post_title' => "Bench post $i", 'post_status' => 'publish',
                         'post_content' => str_repeat("Benchmark content $i. ", 100)));
}}
""", timeout=600)


def baseline(site, folder: Path) -> float:
    options = folder / "client.cnf"
    options.write_text(f"[client]\nuser={site.db_user}\npassword=\"{site.db_password}\"\nhost=127.0.0.1\n"
                       f"port={site.mariadb.port}\n")
    options.chmod(0o600)
    out = folder / "baseline"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    started = time.monotonic()
    subprocess.run(f"mariadb-dump --defaults-extra-file={options} --single-transaction --quick --routines "
                   f"--triggers --hex-blob {site.db_name} | gzip > {out}/db.sql.gz", shell=True, check=True)
    subprocess.run(["tar", "czf", str(out / "files.tar.gz"), "-C", str(site.path), "."], check=True)
    seconds = time.monotonic() - started
    sizes = sum(p.stat().st_size for p in out.iterdir())
    print(f"    baseline: {seconds:6.2f}s  ({sizes / 1e6:.1f} MB)")
    return seconds


def wpgate_backup(config: Path, label: str, bed: TestBed) -> tuple[float, dict]:
    started = time.monotonic()
    result = subprocess.run([str(WPGATE), "-c", str(config), "backup", "production", "--json"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        log = bed.mariadb.log_path.read_text(errors="replace").splitlines()[-15:] if bed.mariadb else []
        sys.exit(f"wpgate backup failed: {result.stderr}\nMariaDB's log ends with:\n" + "\n".join(log))
    manifest = json.loads(result.stdout)
    if manifest.get("engine") == "restic":
        files = manifest["files"]
        print(f"    {label}: {seconds:6.2f}s  ({files['files']} files: {files['new']} new, {files['changed']} changed; "
              f"{manifest['database']['rows']} rows)")
        return seconds, manifest
    size = sum(part["bytes"] for part in manifest["parts"].values())
    reused = manifest["files"].get("reused_from")
    print(f"    {label}: {seconds:6.2f}s  ({size / 1e6:.1f} MB, {manifest['files']['files']} files, "
          f"{manifest['database']['rows']} rows{', archive reused from ' + reused if reused else ''})")
    return seconds, manifest


RESTIC_PASSWORD = "bench-restic-password"


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def change_one_percent(site, round_number: int) -> None:
    """Rewrite 1% of the files under the root (uploads first: what changes on a real site) and 1% of the posts."""
    root = Path(site.path)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    files.sort(key=lambda p: "uploads" not in p.parts)
    for path in files[:max(1, len(files) // 100)]:
        if path.suffix == ".jpg":
            path.write_bytes(os.urandom(path.stat().st_size))
        else:
            path.write_bytes(path.read_bytes() + f"\n/* changed in round {round_number} */\n".encode())
    count = int(site.sql("SELECT COUNT(*) FROM wp_posts").split()[-1])
    site.sql(f"UPDATE wp_posts SET post_content = CONCAT(post_content, ' changed {round_number}') "
             f"ORDER BY ID LIMIT {max(1, count // 100)}")


def compare_engines(bed: TestBed, site, folder: Path, rounds: int) -> None:
    os.environ["WPGATE_BENCH_RESTIC_PASSWORD"] = RESTIC_PASSWORD
    results: dict[str, list[tuple[float, int]]] = {}
    for number in range(1, rounds + 1):
        print(f"round {number}")
        round_folder = folder / f"engines-{number}"
        primary, second = round_folder / "restic", round_folder / "restic-offsite"
        environment = {**os.environ, "RESTIC_PASSWORD": RESTIC_PASSWORD}
        subprocess.run(["restic", "-q", "-r", str(primary), "init"], check=True, env=environment)
        password_file = round_folder / "password"
        password_file.write_text(RESTIC_PASSWORD)
        subprocess.run(["restic", "-q", "-r", str(second), "init", "--from-repo", str(primary), "--copy-chunker-params",
                        "--from-password-file", str(password_file)], check=True, env=environment)
        configs = {}
        for engine, backup in (("archive", {"dir": str(round_folder / "host"), "offsite": str(round_folder / "offsite")}),
                               ("restic", {"engine": "restic", "repository": str(primary), "offsite": str(second),
                                           "password_env": "WPGATE_BENCH_RESTIC_PASSWORD"})):
            configs[engine] = round_folder / f"{engine}.yml"
            configs[engine].write_text(yaml.safe_dump({"state_dir": str(round_folder / f"state-{engine}"), "sites": {
                "production": {"path": str(site.path), "url": site.url, "backup": backup}}}))
        stored = {"archive": round_folder / "host", "restic": primary}
        for phase in ("first", "repeat"):
            if phase == "repeat":
                change_one_percent(site, number)
            order = ["baseline", "archive", "restic"] if number % 2 else ["restic", "archive", "baseline"]
            for engine in order:
                if engine == "baseline":
                    seconds = baseline(site, round_folder)
                    size = folder_bytes(round_folder / "baseline")
                else:
                    before = folder_bytes(stored[engine])
                    seconds, _ = wpgate_backup(configs[engine], f"{engine} {phase}", bed)
                    size = folder_bytes(stored[engine]) - before
                results.setdefault(f"{engine} {phase}", []).append((seconds, size))
        shutil.rmtree(round_folder, ignore_errors=True)
    print(f"\nmedian of {rounds} round(s): seconds, bytes added on the host")
    medians = {key: (statistics.median(s for s, _ in values), statistics.median(b for _, b in values))
               for key, values in results.items()}
    for key, (seconds, size) in medians.items():
        print(f"  {key:16s} {seconds:7.2f}s  {size / 1e6:8.1f} MB")
    for phase in ("first", "repeat"):
        (rs, rb), (a_s, ab), (bs, _) = medians[f"restic {phase}"], medians[f"archive {phase}"], medians[f"baseline {phase}"]
        print(f"{phase} backup: restic / archive {rs / a_s:.2f}x in time, {rb / max(ab, 1):.3f}x in bytes; "
              f"restic / baseline {rs / bs:.2f}x, archive / baseline {a_s / bs:.2f}x in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads-mb", type=int, default=200)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--engines", action="store_true", help="compare engine: archive and engine: restic")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wpgate-bench-backup-"))
    try:
        with TestBed(folder / "bed") as bed:
            print(f"building a site with {arguments.uploads_mb} MB of uploads and {arguments.posts} posts…")
            site = bed.create_site("bench-backup", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
            populate(site, arguments.uploads_mb, arguments.posts)
            if arguments.engines:
                compare_engines(bed, site, folder, arguments.rounds)
                return
            config = folder / "wpgate.yml"
            config.write_text(yaml.safe_dump({"sites": {"production": {
                "path": str(site.path), "url": site.url,
                "backup": {"dir": str(folder / "host"), "offsite": str(folder / "offsite")}}}}))
            firsts, seconds_again, bases = [], [], []
            for number in range(1, arguments.rounds + 1):
                print(f"round {number}")
                if number % 2:
                    bases.append(baseline(site, folder))
                    first, _ = wpgate_backup(config, "wpgate backup", bed)
                else:
                    first, _ = wpgate_backup(config, "wpgate backup", bed)
                    bases.append(baseline(site, folder))
                firsts.append(first)
                again, _ = wpgate_backup(config, "again, site unchanged", bed)
                seconds_again.append(again)
                shutil.rmtree(folder / "host", ignore_errors=True)
                shutil.rmtree(folder / "offsite", ignore_errors=True)
            base, ours, again = (statistics.median(v) for v in (bases, firsts, seconds_again))
            print(f"\nmedian of {arguments.rounds} rounds: baseline {base:.2f}s, wpgate backup {ours:.2f}s, "
                  f"second backup of the unchanged site {again:.2f}s")
            print(f"ratio wpgate backup / baseline: {ours / base:.2f}")
            print(f"ratio second backup / first: {again / ours:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
