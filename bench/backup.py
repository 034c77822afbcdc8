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
    size = sum(part["bytes"] for part in manifest["parts"].values())
    reused = manifest["files"].get("reused_from")
    print(f"    {label}: {seconds:6.2f}s  ({size / 1e6:.1f} MB, {manifest['files']['files']} files, "
          f"{manifest['database']['rows']} rows{', archive reused from ' + reused if reused else ''})")
    return seconds, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads-mb", type=int, default=200)
    parser.add_argument("--posts", type=int, default=3000)
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wpgate-bench-backup-"))
    try:
        with TestBed(folder / "bed") as bed:
            print(f"building a site with {arguments.uploads_mb} MB of uploads and {arguments.posts} posts…")
            site = bed.create_site("bench-backup", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
            populate(site, arguments.uploads_mb, arguments.posts)
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
