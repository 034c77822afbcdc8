"""nginx's FastCGI cache: the key pages through an ngx_cache_purge location, or every entry of its folder on the host."""

from __future__ import annotations

from pydantic import field_validator, model_validator

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.command import Command
from wpgate.config_types import HttpUrl, Strict, absolute_path


class NginxCache(Strict):
    """nginx's FastCGI (or proxy) cache: a purge location (ngx_cache_purge), or its folder on the host."""

    purge_url: HttpUrl | None = None
    cache_path: str | None = None

    @field_validator("cache_path")
    @classmethod
    def _cache_folder(cls, path: str | None) -> str | None:
        if path is None:
            return None
        path = absolute_path(path, path, "on the site's host (nginx's fastcgi_cache_path)")
        if path.rstrip("/").count("/") < 3:
            raise ValueError(f"{path!r} is too near the root to be emptied: name nginx's own cache folder "
                             "(such as /var/cache/nginx/fastcgi)")
        return path

    @model_validator(mode="after")
    def _one_way(self) -> "NginxCache":
        if (self.purge_url is None) == (self.cache_path is None):
            raise ValueError("give exactly one of purge_url (ngx_cache_purge) and cache_path (the cache folder)")
        return self


class Nginx:
    name = "nginx"
    kind = "server"
    Options = NginxCache

    def __init__(self, target: CacheSite, options: NginxCache) -> None:
        self.target = target
        self.options = options

    def purge_urls(self) -> list[str]:
        return [f"{self.options.purge_url}{page}" for page in self.target.pages]

    def describe(self) -> str:
        if self.options.cache_path:
            return f"empty {self.options.cache_path} on the site's host (find -mindepth 1 -delete)"
        return "GET " + ", ".join(self.purge_urls())

    def purge(self) -> Outcome:
        if self.options.cache_path:
            return self._empty_folder()
        results = []
        for url in self.purge_urls():
            response = cache_http.to_server_cache(self.target, "GET", url, what="nginx")
            if response.status_code == 404:
                results.append("404 (not in the cache)")  # ngx_cache_purge's answer for an entry it does not hold
            elif 200 <= response.status_code < 300:
                results.append(str(response.status_code))
            else:
                raise PurgeFailed(f"nginx: GET {url} answered {response.status_code} "
                                  f"{cache_http.body_line(response)}: check the ngx_cache_purge location",
                                  {"layer": self.name, "status": response.status_code})
        return Outcome(self.name, self.describe(), "; ".join(results))

    def _empty_folder(self) -> Outcome:
        folder, transport = self.options.cache_path, self.target.transport
        if not transport.run(Command.of("test", "-d", folder)).ok:
            raise PurgeFailed(f"nginx: no cache folder {folder} on {transport.name}: check caches[].nginx.cache_path",
                              {"layer": self.name})
        result = transport.run(Command.of("find", folder, "-mindepth", "1", "-delete"), timeout=600)
        if not result.ok:
            raise PurgeFailed(f"nginx: could not empty {folder} on {transport.name}: "
                              f"{result.error_text() or f'exit status {result.returncode}'}", {"layer": self.name})
        return Outcome(self.name, self.describe(), "emptied")
