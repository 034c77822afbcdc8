"""The pages check: each key page answers as a visitor expects, whole, without error text, with its content and assets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from wpgate.checks import Check, Problem, Result
from wpgate.checks import html as page_html
from wpgate.config import SiteConfig
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.checks import Watch


class PagesCheck(Check):
    name = "pages"

    def __init__(self) -> None:
        self.ok_assets: set[str] = set()  # answered 200 in this run, at that URL (a new version is a new URL)

    def describe(self, site: SiteConfig) -> str:
        content = sum(len(texts) for texts in site.checks.content.values())
        return (f"pages {', '.join(site.checks.all_pages)}: status, a whole document, no fatal-error or PHP error "
                f"text, {plural(content, 'expected text')}, same-site stylesheets, scripts and images answer 200")

    def baseline(self, watch: "Watch") -> dict[str, Any]:
        result = self.run(watch, "baseline")
        watch.remember(result.problems)
        # PHP notices a page already printed are the site's own; only new ones are blamed on the release.
        return {"php_messages": result.evidence.pop("_php_messages", [])}

    def run(self, watch: "Watch", label: str, quick: bool = False) -> Result:
        problems: list[Problem] = []
        pages: dict[str, Any] = {}
        known_messages = set(watch.state.get(self.name, {}).get("php_messages", []))
        seen_messages: list[str] = []
        ok_assets = self.ok_assets
        for path in watch.config.all_pages:
            found, page_problems, messages = self._page(watch, path, ok_assets, known_messages)
            pages[path] = found
            problems += page_problems
            seen_messages += messages
        result = Result(self.name, "failed" if problems else "passed",
                        plural(len(pages), "page"), problems, {"pages": pages})
        if label == "baseline":
            result.evidence["_php_messages"] = seen_messages
        return result

    def _page(self, watch: "Watch", path: str, ok_assets: set[str],
              known_messages: set[str]) -> tuple[dict[str, Any], list[Problem], list[str]]:
        url = watch.url(path)
        problems: list[Problem] = []

        def problem(what: str, kind: str, subject: str = "", **evidence: Any) -> None:
            problems.append(Problem(self.name, what, path, kind, subject, {"url": url, **evidence}))

        try:
            response = watch.get(path)
        except httpx.HTTPError as error:
            problem(f"did not answer: {type(error).__name__}: {error}", "unreachable")
            return {"status": None}, problems, []
        body, status = response.text, response.status_code
        found: dict[str, Any] = {"status": status, "bytes": len(response.content)}
        marker = page_html.fatal_marker(body)
        errors = page_html.php_errors(body)
        messages = [f"{e['level']}: {e['message']}" for e in errors]
        if page_html.is_maintenance(status, body):
            problem(f"answered 503 with WordPress's planned-maintenance page ('{page_html.MAINTENANCE}'): "
                    "an update's .maintenance file is in place", "maintenance", status=status)
            return found, problems, messages
        if status >= 400:
            detail = marker or (f"PHP {errors[0]['level']}: {errors[0]['message']}" if errors else
                                page_html.plain(body, 160) or "an empty page")
            problem(f"answered {status} with {detail}", "status", str(status), status=status,
                    error=page_html.plain(body, 300))
            return found, problems, messages
        if marker:
            problem(f"answered {status} but shows {marker}", "fatal_marker", status=status,
                    error=page_html.plain(body, 300))
        for error in errors:
            text = f"{error['level']}: {error['message']}"
            if error["level"] in page_html.FATAL_LEVELS or text not in known_messages:
                problem(f"shows PHP's error text: {text} in {error['file']} on line {error['line']}",
                        "php_error", text, status=status, error=text, file=error["file"], line=error["line"])
        if not page_html.is_complete(body):
            tail = page_html.plain(body[-200:], 120)
            problem(f"answered {status} but the page is incomplete: no </html> ({len(response.content)} bytes, "
                    f"ends with '{tail}')", "incomplete", status=status, bytes=len(response.content), ends_with=tail)
        for text in watch.config.content.get(path, []):
            if text not in body:
                problem(f"the expected content '{text}' is missing", "content", text, status=status, expected=text)
        assets = page_html.same_site_assets(body, str(response.url), watch.site.url)
        found["assets"] = len(assets)
        for kind, asset in assets:
            if asset in ok_assets:
                continue
            answer = self._asset_status(watch, asset)
            if answer == 200:
                ok_assets.add(asset)
            else:
                shown = asset.removeprefix(watch.site.url)
                problem(f"{kind} {shown} answered {answer}", "asset", shown.split("?", 1)[0],
                        asset=asset, status=answer)
        return found, problems, messages

    @staticmethod
    def _asset_status(watch: "Watch", url: str) -> int | str:
        try:
            with watch.client.stream("GET", url) as response:
                return response.status_code
        except httpx.HTTPError as error:
            return f"no answer ({type(error).__name__})"
