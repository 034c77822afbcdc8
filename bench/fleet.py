"""Benchmark: a group release (two plugin updates) rolled out to N real sites of the test bed (php -S, one shared
MariaDB), by the local engine at several `--parallel`, by two Celery workers, against the baseline of N
`wpgate deploy` commands run one after another, in the same run.

    .venv/bin/python bench/fleet.py [--sites 20] [--only local,celery,sequential] [--parallel 1,2,4]

Every site: wpgate-hello 1.0.0 → 1.1.0 and wpgate-seo 3.0.0 → 3.1.0, one release planned from one staging site with
`plan --from staging --to fleet`, every gate included, a 1s monitoring window (as the tests use). Rollouts run in
one wave (`--waves 100%`): the figure is throughput, not the canary waves' wait. The sites are put back (their
files and database as saved after they were built) before each measurement. Prints each measurement's wall time,
sites per minute, its speed-up over the baseline, the median of the sites' own run seconds (from their reports: it
grows when sites running at once contend for the CPUs, or when the shared machine gets busier), the CPU seconds per
site of wpgate's processes (with the PHP they run, and redis-server for Celery), of MariaDB and of the sites' web
servers, and where adding parallel sites stops paying on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from wpgate.testbed import TestBed
from wpgate.testbed.process import free_port

OLD = {"wpgate-hello": "1.0.0", "wpgate-seo": "3.0.0"}
NEW = {"wpgate-hello": "1.1.0", "wpgate-seo": "3.1.0"}
WPGATE = Path(sys.executable).with_name("wpgate")
KINDS = ("sequential", "local", "celery")


def wpgate(config: Path, *args: str, env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run([str(WPGATE), "-c", str(config), *args], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, env={**os.environ, **(env or {})})
    if result.returncode not in codes:
        sys.exit(f"wpgate {' '.join(args)}: exit {result.returncode}\n{result.stderr[-3000:]}")
    return result.stdout


def process_cpu(pids: set[int]) -> float:
    """CPU seconds used so far by these processes and the children they waited for."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Fleet:
    def __init__(self, bed: TestBed, folder: Path, count: int) -> None:
        self.bed, self.folder = bed, folder
        self.staging = bed.create_site("fbench-staging", plugins=NEW)
        self.sites = {}
        for number in range(1, count + 1):
            name = f"fbench-{number:02d}"
            self.sites[name] = bed.create_site(name, plugins=OLD)
        entries = {"staging": {"path": str(self.staging.path), "url": self.staging.url}}
        for name, site in self.sites.items():
            entries[name] = {"path": str(site.path), "url": site.url, "checks": {"window": "1s"},
                             "backup": {"dir": str(folder / "backups" / name), "offsite": str(folder / "offsite")}}
        # Signed approvals: a Celery worker takes only releases a listed approver signed.
        key = folder / "bench-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True)
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        (folder / "allowed_signers").write_text(f"bench {kind} {blob}\n")
        self.config = folder / "wpgate.yml"
        self.config.write_text(yaml.safe_dump({"state_dir": str(folder / "state"), "approvers": "allowed_signers",
                                               "sites": entries,
                                               "groups": {"fleet": list(self.sites)},
                                               "fleet": {"broker_env": "WPGATE_BROKER_URL"}}, sort_keys=False))
        self.release = folder / "release.yml"
        planned = json.loads(wpgate(self.config, "plan", "--from", "staging", "--to", "fleet", "-o",
                                    str(self.release), "--json"))
        assert [(u["slug"], u["to"]) for u in planned["updates"]] == list(NEW.items()), planned["updates"]
        assert list(planned["sites"]) == list(self.sites), planned.get("skipped")
        qa = folder / "qa.yml"
        qa.write_text("checks: [{name: smoke, required: true, status: passed}]\n")
        wpgate(self.config, "approve", str(self.release), "--qa", str(qa), "--by", "bench", "--key", str(key))
        self.saved = folder / "saved"
        self.saved.mkdir()
        for name, site in self.sites.items():
            subprocess.run(["rsync", "-a", f"{site.path}/", f"{self.saved / name}/"], check=True)
            (self.saved / f"{name}.sql").write_text(site.dump())

    def reset(self) -> None:
        """Every site as it was built: its files (in place: the web server keeps its root) and its database;
        the backups of earlier measurements removed (disk)."""
        for name, site in self.sites.items():
            subprocess.run(["rsync", "-a", "--delete", f"{self.saved / name}/", f"{site.path}/"], check=True)
            site.mariadb.sql((self.saved / f"{name}.sql").read_text(), database=site.db_name)
            versions = {p["slug"]: p["version"] for p in json.loads(
                wpgate(self.config, "inventory", name, "--json"))["plugins"]}
            assert all(versions.get(slug) == version for slug, version in OLD.items()), (name, versions)
        shutil.rmtree(self.folder / "backups", ignore_errors=True)
        shutil.rmtree(self.folder / "offsite", ignore_errors=True)

    def services_cpu(self) -> tuple[float, float]:
        """CPU seconds so far of MariaDB and of the sites' web servers."""
        servers = set()
        for site in [self.staging, *self.sites.values()]:
            servers |= site.pids
        return process_cpu(self.bed.pids - servers), process_cpu(servers)

    def sequential(self) -> list[float]:
        """Each site's run seconds (from its report)."""
        seconds = []
        for name in self.sites:
            report = json.loads(wpgate(self.config, "deploy", str(self.release), "--to", name, "--yes", "--json"))
            assert report["status"] == "complete", (name, report["status"])
            seconds.append(float(report["seconds"]))
        return seconds

    def rollout(self, *args: str, env: dict[str, str] | None = None) -> list[float]:
        data = json.loads(wpgate(self.config, "rollout", str(self.release), "--to", "fleet", "--waves", "100%",
                                 "--yes", "--json", *args, env=env))
        statuses = {name: entry["status"] for name, entry in data["sites"].items()}
        assert data["status"] == "complete" and set(statuses.values()) == {"complete"}, statuses
        return [float(entry["seconds"]) for entry in data["sites"].values()]

    def celery(self, workers: int) -> list[float]:
        """A redis-server on a free loopback port and `workers` `wpgate worker` processes (one site at a time
        each), started and stopped inside the measurement: what a rollout to idle workers costs."""
        port = free_port()
        scratch = self.folder / f"celery-{port}"
        scratch.mkdir()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(scratch)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {**os.environ, "WPGATE_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
        started: list[subprocess.Popen] = []
        try:
            for number in range(workers):
                log = scratch / f"worker-{number}.log"
                started.append(subprocess.Popen([str(WPGATE), "-c", str(self.config), "worker"], env=env,
                                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=open(log, "w")))
                deadline = time.monotonic() + 120  # a guard against a hang, not a measure
                while "taking site deployments" not in log.read_text():
                    assert started[-1].poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
            return self.rollout("--engine", "celery", "--parallel", str(2 * workers), env=env)
        finally:
            for process in [*started, redis]:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--only", default=",".join(KINDS), help="any of sequential,local,celery")
    parser.add_argument("--parallel", default="1,2,4", help="the local engine's --parallel values")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    options = parser.parse_args()
    only = [kind.strip() for kind in options.only.split(",") if kind.strip()]
    unknown = sorted(set(only) - set(KINDS))
    if unknown or options.sites < 1:
        parser.error(f"--only takes {','.join(KINDS)}" if unknown else "--sites must be at least 1")
    plan: list[tuple[str, list[str]]] = []
    if "sequential" in only:
        plan.append((f"{options.sites} x wpgate deploy", ["sequential"]))
    if "local" in only:
        plan += [(f"rollout local --parallel {p}", ["local", p]) for p in options.parallel.split(",")]
    if "celery" in only:
        plan.append((f"rollout celery, {options.workers} workers", ["celery"]))

    rows: list[tuple[str, float, float, float, float, float]] = []
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-fbench-") as scratch:
        began = time.perf_counter()
        fleet = Fleet(bed, Path(scratch), options.sites)
        print(f"{options.sites} sites built, release planned and approved in {time.perf_counter() - began:.0f}s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        for label, (kind, *rest) in plan:
            fleet.reset()
            mine, (database, servers) = children_cpu(), fleet.services_cpu()
            started = time.perf_counter()
            if kind == "sequential":
                runs = fleet.sequential()
            elif kind == "local":
                runs = fleet.rollout("--parallel", rest[0])
            else:
                runs = fleet.celery(options.workers)
            seconds = time.perf_counter() - started
            database_now, servers_now = fleet.services_cpu()
            row = (label, seconds, statistics.median(runs), (children_cpu() - mine) / options.sites,
                   (database_now - database) / options.sites, (servers_now - servers) / options.sites)
            rows.append(row)
            print(f"{label}: {seconds:.1f}s, load average {os.getloadavg()[0]:.1f}", flush=True)

    baseline = rows[0][1] if plan[0][1][0] == "sequential" else None
    print()
    print(f"{options.sites} sites, 2 plugin updates each, 1s monitoring window, php -S, one MariaDB, "
          f"{os.cpu_count()} CPUs")
    print(f"| {'run':<32} | {'wall s':>7} | {'sites/min':>9} | {'x baseline':>10} | {'s/site':>6} | "
          f"{'median run s':>12} | {'CPU s/site: wpgate':>18} | {'MariaDB':>7} | {'web':>5} |")
    print(f"|{'-' * 34}|{'-' * 9}|{'-' * 11}|{'-' * 12}|{'-' * 8}|{'-' * 14}|{'-' * 20}|{'-' * 9}|{'-' * 7}|")
    for label, seconds, run, mine, database, servers in rows:
        ratio = f"{baseline / seconds:.2f}" if baseline else "-"
        print(f"| {label:<32} | {seconds:7.1f} | {60 * options.sites / seconds:9.1f} | {ratio:>10} | "
              f"{seconds / options.sites:6.1f} | {run:12.1f} | {mine:18.2f} | {database:7.2f} | {servers:5.2f} |")
    local = [(int(label.rsplit(" ", 1)[1]), seconds) for label, seconds, *_ in rows if "local" in label]
    for (before, slower), (after, faster) in zip(local, local[1:]):
        gain = slower / faster
        verdict = "pays" if gain >= 1.15 else "stops paying"
        print(f"--parallel {before} → {after}: x{gain:.2f} ({verdict})")


if __name__ == "__main__":
    main()
