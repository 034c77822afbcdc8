"""The admin check: the login page answers, wp-admin runs its hooks without dying, and the monitor account's
dashboard loads without an error notice.

Without logging in, `admin-ajax.php?action=…` runs wp-admin's `admin_init` hooks (a plugin that dies there
breaks every admin page) and answers 400 when they pass: that part is cheap and runs after each update.
The dashboard itself needs the monitor account (`checks.admin`); its password comes from the environment,
travels only in the login form's body, and is never written anywhere. The session is logged out again.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import httpx

from wpgate import web
from wpgate.checks import Check, Problem, Result
from wpgate.checks import html as page_html
from wpgate.config import SiteConfig

if TYPE_CHECKING:
    from wpgate.checks import Watch

AJAX_PROBE = "/wp-admin/admin-ajax.php?action=wpgate_monitor"
_LOGOUT = re.compile(r"""href=["']([^"']*wp-login\.php\?action=logout[^"']*)["']""")


class AdminCheck(Check):
    name = "admin"

    def describe(self, site: SiteConfig) -> str:
        account = site.checks.admin
        dashboard = (f"the dashboard as {account.user} (password from ${account.password_env})" if account else
                     "the dashboard is skipped: no monitor account (checks.admin)")
        return f"admin: wp-login.php answers, wp-admin's admin_init hooks run; {dashboard}"

    def baseline(self, watch: "Watch") -> dict[str, Any]:
        result = self._check(watch, dashboard=True)
        self._refuse_a_refused_login(result.problems)
        watch.remember(result.problems)
        return {"notices": result.evidence.get("dashboard_notices", [])}

    def run(self, watch: "Watch", label: str, quick: bool = False) -> Result:
        return self._check(watch, dashboard=not quick)

    def _check(self, watch: "Watch", *, dashboard: bool) -> Result:
        problems: list[Problem] = []
        evidence: dict[str, Any] = {}

        def problem(what: str, kind: str, page: str, subject: str = "", **more: Any) -> None:
            problems.append(Problem(self.name, what, page, kind, subject, more))

        login = self._get(watch, "/wp-login.php", problem)
        if login is not None and page_html.is_maintenance(login.status_code, login.text):
            problem("wp-login.php answered 503 with WordPress's planned-maintenance page", "maintenance",
                    "/wp-login.php", status=login.status_code)
            return Result(self.name, "failed", "in maintenance", problems, {"login_page": "maintenance"})
        if login is not None:
            trouble = self._page_trouble(login, "user_login")
            if trouble:
                problem(trouble, "login_page", "/wp-login.php", status=login.status_code,
                        error=page_html.plain(login.text, 300))
            evidence["login_page"] = trouble or "ok"
        ajax = self._get(watch, AJAX_PROBE, problem)
        if ajax is not None:
            marker = page_html.fatal_marker(ajax.text)
            errors = page_html.php_errors(ajax.text)
            if ajax.status_code >= 500 or marker or any(e["level"] in page_html.FATAL_LEVELS for e in errors):
                detail = marker or (f"PHP {errors[0]['level']}: {errors[0]['message']}" if errors else
                                    page_html.plain(ajax.text, 160))
                problem(f"wp-admin's admin_init hooks die: admin-ajax.php answered {ajax.status_code} with {detail}",
                        "admin_init", "/wp-admin/", status=ajax.status_code, error=page_html.plain(ajax.text, 300))
                evidence["admin_init"] = "fails"
            else:
                evidence["admin_init"] = "ok"
        account = watch.config.admin
        if not dashboard:
            evidence["dashboard"] = "not part of the per-update probe"
        elif account is None:
            evidence["dashboard"] = "skipped: no monitor account configured (checks.admin)"
        else:
            evidence.update(self._dashboard(watch, account.user, watch.settings.secret(account.password_env).value,
                                            problem))
        status = "failed" if problems else "passed"
        detail = "login page, admin_init" + ("" if "dashboard_notices" not in evidence else ", dashboard")
        return Result(self.name, status, detail, problems, evidence)

    @staticmethod
    def _get(watch: "Watch", path: str, problem) -> httpx.Response | None:
        try:
            return watch.get(path)
        except httpx.HTTPError as error:
            problem(f"{path} did not answer: {type(error).__name__}", "unreachable", path)
            return None

    @staticmethod
    def _page_trouble(response: httpx.Response, expected: str) -> str | None:
        body = response.text
        marker = page_html.fatal_marker(body)
        if response.status_code != 200:
            return f"answered {response.status_code}" + (f" with {marker}" if marker else "")
        if marker:
            return f"shows {marker}"
        errors = [e for e in page_html.php_errors(body) if e["level"] in page_html.FATAL_LEVELS]
        if errors:
            return f"shows PHP's error text: {errors[0]['level']}: {errors[0]['message']}"
        if not page_html.is_complete(body):
            return f"answered {response.status_code} but the page is incomplete: no </html>"
        if expected not in body:
            return f"answered {response.status_code} without the expected '{expected}'"
        return None

    def precondition(self, watch: "Watch") -> dict[str, Any] | None:
        """Before a dry run says the deploy could go ahead: the monitor account logs in (and out again), as
        the baseline before the first change will. Only the login form is used: no wp-admin page loads, so
        none of wp-admin's hooks runs. A refused login raises GateFailed, as the baseline does."""
        account = watch.config.admin
        if account is None:
            return None
        problems: list[Problem] = []

        def problem(what: str, kind: str, page: str, subject: str = "", **more: Any) -> None:
            problems.append(Problem(self.name, what, page, kind, subject, more))

        password = watch.settings.secret(account.password_env).value
        with _session() as client:
            if self._log_in(watch, client, account.user, password, problem):
                self._log_out(client, watch.site.url, "")
        self._refuse_a_refused_login(problems)
        if problems:
            return {"check": "monitor login", "status": "not checked", "detail": problems[0].what}
        return {"check": "monitor login", "status": "passed",
                "detail": f"the monitor account {account.user} logs in at {watch.site.url}/wp-login.php "
                          "(logged out again; no wp-admin page loaded)"}

    @staticmethod
    def _refuse_a_refused_login(problems: list[Problem]) -> None:
        refused = [p for p in problems if p.kind == "login_refused"]
        if refused:
            from wpgate.gates import GateFailed  # before any change: a refusal, with what to do

            raise GateFailed(f"monitor: {refused[0].what}: fix checks.admin or the account before deploying",
                             {"check": AdminCheck.name})

    @staticmethod
    def _log_in(watch: "Watch", client: httpx.Client, user: str, password: str, problem) -> bool:
        """Log in through WordPress's login form; whether it let the account in."""
        base = watch.site.url
        try:
            client.get(f"{base}/wp-login.php")  # WordPress's test cookie
            login = client.post(f"{base}/wp-login.php", data={
                "log": user, "pwd": password, "testcookie": "1", "rememberme": "",
                "redirect_to": f"{base}/wp-admin/"})
        except httpx.HTTPError as error:
            problem(f"logging in as {user} failed: {type(error).__name__}", "login", "/wp-login.php")
            return False
        finally:
            watch.last_request = time.monotonic()
        if login.status_code not in (301, 302, 303):
            error = re.search(r'id="login_error"[^>]*>(.*?)</div>', login.text, re.S)
            reason = page_html.plain(error.group(1), 200) if error else f"answered {login.status_code}"
            kind = "login_refused" if error else "login"
            problem(f"the monitor account {user} cannot log in: {reason}", kind, "/wp-login.php",
                    status=login.status_code)
            return False
        return True

    def _dashboard(self, watch: "Watch", user: str, password: str, problem) -> dict[str, Any]:
        base = watch.site.url
        with _session() as client:
            if not self._log_in(watch, client, user, password, problem):
                return {"dashboard": "not reached"}
            try:
                dashboard = client.get(f"{base}/wp-admin/", follow_redirects=True)
            except httpx.HTTPError as error:
                problem(f"/wp-admin/ did not answer: {type(error).__name__}", "unreachable", "/wp-admin/")
                return {"dashboard": "not reached"}
            finally:
                watch.last_request = time.monotonic()
            evidence: dict[str, Any] = {"dashboard": "ok"}
            trouble = self._page_trouble(dashboard, "wpbody")
            if "wp-login.php" in str(dashboard.url):
                trouble = "logging in led back to the login page"
            if trouble:
                problem(f"the dashboard {trouble}", "dashboard", "/wp-admin/", status=dashboard.status_code,
                        error=page_html.plain(dashboard.text, 300))
                evidence["dashboard"] = "fails"
            notices = page_html.error_notices(dashboard.text) if not trouble else []
            known = set(watch.state.get(self.name, {}).get("notices", []))
            for notice in notices:
                if notice not in known:
                    problem(f"the dashboard shows an error notice: {notice}", "notice", "/wp-admin/", notice,
                            notice=notice)
            evidence["dashboard_notices"] = notices
            self._log_out(client, base, dashboard.text)
        return evidence

    @staticmethod
    def _log_out(client: httpx.Client, base: str, dashboard: str) -> None:
        """End the monitor's session (WordPress keeps a token per session in the database)."""
        try:
            link = _LOGOUT.search(dashboard)
            if link is None:
                # wp-login.php asks "Do you really want to log out?" with a link that carries the nonce.
                confirm = client.get(f"{base}/wp-login.php?action=logout")
                link = _LOGOUT.search(confirm.text)
            if link is not None:
                client.get(link.group(1).replace("&amp;", "&"))
        except httpx.HTTPError:
            pass  # the session expires on its own; the check's verdict does not depend on it


def _session() -> httpx.Client:
    """The monitor account's own client: its cookies are the session, redirects are read, not followed."""
    return web.client(timeout=httpx.Timeout(20.0), follow_redirects=False, headers={"User-Agent": "wpgate-monitor"})
