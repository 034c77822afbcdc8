"""How wpgate reaches a site's host: `local` when the site is on this machine, `ssh` otherwise."""

from __future__ import annotations

from wpgate.config import SiteConfig
from wpgate.transports.base import Transport
from wpgate.transports.local import LocalTransport
from wpgate.transports.ssh import SshTransport

__all__ = ["Transport", "LocalTransport", "SshTransport", "for_site"]


def for_site(site: SiteConfig) -> Transport:
    if site.ssh:
        return SshTransport(site.ssh, ssh_config=site.ssh_config)
    return LocalTransport()
