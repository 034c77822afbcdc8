"""One site as wpgate works on it: its name, its config, the transport to its host, the PHP bridge into its
WordPress, and where its human lines go. Built once per command; a deploy's gates, the cache layers, the
checks' watch and a rollback all take this one object (or something holding it)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from wpgate.bridge import Bridge
from wpgate.config import SiteConfig
from wpgate.transports import Transport, for_site


def _nothing(text: str) -> None:
    pass


@dataclass(frozen=True)
class SiteSession:
    name: str
    site: SiteConfig
    transport: Transport
    bridge: Bridge
    say: Callable[[str], None] = _nothing

    @classmethod
    @contextmanager
    def open(cls, name: str, site: SiteConfig, say: Callable[[str], None] = _nothing) -> Iterator["SiteSession"]:
        """The site reached: its transport open for the block, closed however the block ends."""
        with for_site(site) as transport:
            yield cls(name, site, transport, Bridge(name, site, transport), say)


class OnSite:
    """What works on one site (a deploy, a rollback, a watch, a cache purge): its session's parts by name."""

    session: SiteSession

    @property
    def site_name(self) -> str:
        return self.session.name

    @property
    def site(self) -> SiteConfig:
        return self.session.site

    @property
    def transport(self) -> Transport:
        return self.session.transport

    @property
    def bridge(self) -> Bridge:
        return self.session.bridge

    def say(self, text: str) -> None:
        self.session.say(text)
