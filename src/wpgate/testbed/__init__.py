"""Real-services test bed: WordPress sites on MariaDB behind php -S, nginx + php-fpm and
Varnish, plus an sshd on loopback, all on 127.0.0.1 and all stopped on close."""

from wpgate.testbed.bed import Site, TestBed
from wpgate.testbed.cores import CORE_VERSIONS, core_dir
from wpgate.testbed.process import TestBedError
from wpgate.testbed.sshd import SshServer

__all__ = ["CORE_VERSIONS", "Site", "SshServer", "TestBed", "TestBedError", "core_dir"]
