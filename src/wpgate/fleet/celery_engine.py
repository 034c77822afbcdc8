"""`engine: celery`: a rollout's site deployments run in `wpgate worker` processes, on this machine or others,
fed by a Redis broker (`fleet.broker_env` names the environment variable holding its URL).

The `rollout` command stays the controller: it decides the waves (a task per site, never a chain), and it
alone writes the ledger. A worker needs only its config, its secrets and the broker:

- the release travels in the task (the manifest exactly as approved); its artifacts are put in Redis by the
  controller, one key per sha256, and a worker fetches the ones it lacks into its own state folder and checks
  each one's sha256 on arrival (gate 6.1 checks them again);
- a task is idempotent on (rollout, site): its outcome is kept in Redis, and a re-delivered or re-sent task
  returns it instead of deploying again; while a worker runs a site it holds a claim that it refreshes every
  few seconds, so the controller sees a worker that died (its claim expires) and sends the site again: the
  worker that takes it over resumes the dead one's run through that run (`wpgate resume RUN_ID`'s code path),
  when it can read the run's folder (the same machine, or a shared state folder);
- the broker's visibility timeout (6 h) is above the longest site run, so a slow site is never handed to a
  second worker while the first still runs it; acks are late, so a message a dead worker held is not lost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from wpgate import redact
from wpgate.config import Settings
from wpgate.errors import BadInput, GateRefused
from wpgate.fleet.ledger import is_rollout_id
from wpgate.run import RUN_ID

log = logging.getLogger(__name__)

TASK = "wpgate.deploy_site"
VISIBILITY_TIMEOUT = 6 * 3600  # seconds: above the longest site run (backup, apply, a monitoring window)
CLAIM_SECONDS = 15             # a worker's claim on a site lives this long unless refreshed
REFRESH_SECONDS = 4
KEEP_SECONDS = 14 * 24 * 3600  # outcomes and artifacts stay in Redis this long
POLL = 1.0


def broker_url(settings: Settings) -> str:
    env = settings.model.fleet.broker_env
    if not env:
        raise BadInput(f"{settings.path}: engine celery needs a broker: set fleet.broker_env to the environment "
                       "variable holding its URL (redis://host:6379/0)")
    url = os.environ.get(env, "")
    if not url:
        raise BadInput(f"engine celery: environment variable {env} (fleet.broker_env) is not set: give it the "
                       "broker's URL (redis://host:6379/0)")
    if not url.startswith(("redis://", "rediss://")):
        raise BadInput(f"engine celery: {env} is not a redis:// URL")
    redact.register_url(url)
    return url


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


def check_broker(settings: Settings) -> None:
    """The broker answers (a Redis PING): refused (exit 3) before any site is touched when it does not."""
    import redis

    url = broker_url(settings)
    try:
        _redis(url).ping()
    except redis.RedisError as error:
        raise GateRefused(redact.text(f"engine celery: the broker named by {settings.model.fleet.broker_env} does "
                                      f"not answer ({type(error).__name__}: {error}): start it or fix the URL; "
                                      "nothing was changed")) from None


def make_app(url: str) -> Any:
    from celery import Celery

    app = Celery("wpgate", broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True, task_serializer="json", accept_content=["json"],
        worker_hijack_root_logger=False, task_ignore_result=True)
    return app


def _key(kind: str, rollout_id: str, site: str = "") -> str:
    return f"wpgate:{kind}:{rollout_id}:{site}" if site else f"wpgate:{kind}:{rollout_id}"


class CeleryEngine:
    """The controller's side: a task per site, and each site's outcome read back from Redis."""

    name = "celery"

    def __init__(self, settings: Settings, release: Any, rollout_id: str, folder: Path) -> None:
        from wpgate.release import artifact_file

        self.settings, self.release, self.rollout_id, self.folder = settings, release, rollout_id, folder
        self.url = broker_url(settings)
        self.redis = _redis(self.url)
        self.app = make_app(self.url)
        self.running: dict[str, str] = {}  # site -> run id
        self.sent: dict[str, float] = {}
        self.release_text = (folder / "release.yml").read_text(encoding="utf-8")
        for update in release.updates:  # the shared store: each artifact once, by its sha256
            key = f"wpgate:artifact:{update.artifact.sha256}"
            if not self.redis.exists(key):
                self.redis.set(key, artifact_file(settings.state_dir, update.artifact).read_bytes(), ex=KEEP_SECONDS)

    def start(self, site: str, run_id: str) -> None:
        self._send(site, run_id)
        self.running[site] = run_id
        return None

    def _send(self, site: str, run_id: str) -> None:
        self.app.send_task(TASK, args=[self.rollout_id, site, run_id, self.release_text])
        self.sent[site] = time.monotonic()

    def ended(self) -> list[dict[str, Any]]:
        done = []
        for site, run_id in list(self.running.items()):
            stored = self.redis.get(_key("outcome", self.rollout_id, site))
            if stored:
                del self.running[site]
                result = json.loads(stored)
                report = result.pop("report", None)
                if report:  # the run's report, kept beside the ledger: its folder is on the worker's machine
                    (self.folder / "sites").mkdir(exist_ok=True)
                    (self.folder / "sites" / f"{site}.report.json").write_text(json.dumps(report, indent=2))
                done.append(result)
                continue
            claimed = self.redis.exists(_key("claim", self.rollout_id, site))
            started = self.redis.exists(_key("owner", self.rollout_id, site))
            if started and not claimed and time.monotonic() - self.sent[site] > CLAIM_SECONDS + REFRESH_SECONDS:
                # The worker that ran the site died: send it again, to be taken over through its own run.
                self._send(site, run_id)
        return done

    def worker_of(self, site: str) -> str | None:
        stored = self.redis.get(_key("owner", self.rollout_id, site))
        return json.loads(stored)["worker"] if stored else None

    def close(self) -> None:
        self.redis.close()


# The worker's side. Set once by `run_worker`, before the worker forks or runs tasks.
_worker: dict[str, Any] = {}


def run_worker(settings: Settings, config_path: Any, concurrency: int, console: Any) -> None:
    """`wpgate worker`: take site deployments from the broker until stopped."""
    if concurrency < 1:
        raise BadInput(f"--concurrency {concurrency}: run at least 1 site deployment at once")
    if settings.approvers is None:
        raise BadInput(f"{settings.path}: a worker deploys what the broker hands it, so it takes only releases "
                       "signed by a listed approver: set `approvers` (an OpenSSH allowed-signers file) in its config")
    url = broker_url(settings)
    check_broker(settings)
    app = make_app(url)
    _worker.update(settings=settings, url=url)
    app.task(name=TASK, bind=False, acks_late=True)(_deploy_task)
    console.print(f"wpgate worker {socket.gethostname()}:{os.getpid()}: taking site deployments from the broker "
                  f"named by {settings.model.fleet.broker_env} (state folder {settings.state_dir})", markup=False)
    pool = ["--pool", "solo"] if concurrency == 1 else ["--pool", "prefork", "--concurrency", str(concurrency)]
    app.worker_main(["worker", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-n", f"wpgate-{os.getpid()}@{socket.gethostname()}", *pool])


def _deploy_task(rollout_id: str, site: str, run_id: str, release_text: str) -> None:
    """One site of a rollout, idempotent on (rollout, site): its outcome is stored in Redis for the controller."""
    settings: Settings = _worker["settings"]
    if not (is_rollout_id(rollout_id) and isinstance(run_id, str) and RUN_ID.fullmatch(run_id)
            and isinstance(site, str)):
        log.warning("wpgate worker: dropped a task that no rollout sends (rollout %r, site %r, run %r)",
                    rollout_id, site, run_id)
        return  # its names become paths in the state folder: nothing of it is trusted further
    store = _redis(_worker["url"])
    outcome_key, claim_key, owner_key = (_key(kind, rollout_id, site) for kind in ("outcome", "claim", "owner"))
    me = {"worker": f"{socket.gethostname()}:{os.getpid()}", "host": socket.gethostname(), "pid": os.getpid(),
          "state_dir": str(settings.state_dir)}
    while True:
        if store.exists(outcome_key):
            return  # done before: a re-delivered or re-sent task does nothing
        if store.set(claim_key, json.dumps(me), nx=True, ex=CLAIM_SECONDS):
            break
        time.sleep(POLL)  # another worker holds the site: its outcome, or its claim's expiry, will come
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(REFRESH_SECONDS):
            try:
                store.set(claim_key, json.dumps(me), ex=CLAIM_SECONDS)
            except Exception as error:  # noqa: BLE001 (a blip must not end the claim while the site deploys)
                log.warning("wpgate worker: could not refresh the claim on %s: %s", site, error)

    keeper = threading.Thread(target=refresh, daemon=True)
    keeper.start()
    try:
        before = store.get(owner_key)
        earlier = json.loads(before) if before else None
        store.set(owner_key, json.dumps(me), ex=KEEP_SECONDS)
        result = (_run_site(settings, store, rollout_id, site, run_id, release_text, earlier)
                  if site in settings.model.sites else _unknown_site(site, run_id))
        store.set(outcome_key, json.dumps(result, default=str), ex=KEEP_SECONDS)
    finally:
        stop.set()
        keeper.join()
        store.delete(claim_key)
        store.close()


def _run_site(settings: Settings, store: Any, rollout_id: str, site: str, run_id: str, release_text: str,
              earlier: dict[str, Any] | None) -> dict[str, Any]:
    from wpgate import progress, release as release_module
    from wpgate.fleet import site as site_module
    from wpgate.run import load_report

    if earlier and (earlier["host"] != socket.gethostname() or earlier["state_dir"] != str(settings.state_dir)):
        # Another worker started this site's run, and its claim ran out. On this machine (its processes are
        # seen) its run is resumed where its folder is readable; on another, it may be alive behind a broken
        # network, and two processes on one site is what must never happen: a person decides.
        if earlier["host"] != socket.gethostname() or not Path(earlier["state_dir"], "runs", run_id).is_dir():
            return {"site": site, "run": run_id, "status": "rollback_failed", "exit_code": 5,
                    "worker": earlier["worker"], "seconds": None, "culprit": None,
                    "error": f"run {run_id} was interrupted on worker {earlier['worker']}, whose state folder is not "
                             f"readable here: run `wpgate resume {run_id}` on {earlier['host']}"}
        settings = _with_state_dir(settings, Path(earlier["state_dir"]))
    folder = settings.state_dir / "rollouts" / rollout_id
    (folder / "sites").mkdir(parents=True, exist_ok=True)
    release_path = folder / "release.yml"
    if not release_path.exists():
        release_path.write_text(release_text, encoding="utf-8")
    release = release_module.load(release_path)
    _fetch_artifacts(settings, store, release)
    with open(folder / "sites" / f"{site}.log", "a", encoding="utf-8") as stream:
        console = site_module.LogOutput(stream)
        progress.use(None)
        result = site_module.deploy_site(settings, release, site, run_id, rollout_id, console)
    try:
        result["report"] = load_report(settings.state_dir, run_id)
    except Exception:  # noqa: BLE001 (a run that never started has no report)
        pass
    return result


def _unknown_site(site: str, run_id: str) -> dict[str, Any]:
    return {"site": site, "run": run_id, "status": "refused", "exit_code": 3,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "seconds": None, "culprit": None, "error": f"site {site!r} is not in this worker's config: nothing changed"}


def _with_state_dir(settings: Settings, state_dir: Path) -> Settings:
    return Settings(settings.model.model_copy(update={"state_dir": str(state_dir)}), settings.path)


def _fetch_artifacts(settings: Settings, store: Any, release: Any) -> None:
    """Each artifact this worker lacks, from the shared store, checked by its sha256 on arrival."""
    from wpgate.release import artifact_file, sha256_file

    for update in release.updates:
        target = artifact_file(settings.state_dir, update.artifact)
        if target.is_file() and sha256_file(target) == update.artifact.sha256:
            continue
        data = store.get(f"wpgate:artifact:{update.artifact.sha256}")
        if data is None:
            raise BadInput(f"artifact {update.artifact.path} ({update.artifact.sha256[:12]}…) is not in the shared "
                           "store: start the rollout again from its controller")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        if sha256_file(partial) != update.artifact.sha256:
            partial.unlink()
            raise BadInput(f"artifact {update.artifact.path} arrived with another sha256: refused")
        partial.replace(target)
