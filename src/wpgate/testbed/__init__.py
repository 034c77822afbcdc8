"""Real-services test bed: WordPress sites on MariaDB behind php -S, nginx + php-fpm and
Varnish, all on 127.0.0.1 and all stopped on close (the tests' sshd is theirs: tests/support/sshd.py)."""

from wpgate.testbed.bed import Site, TestBed
from wpgate.testbed.cores import CORE_VERSIONS, core_dir
from wpgate.testbed.process import TestBedError

__all__ = ["CORE_VERSIONS", "Site", "TestBed", "TestBedError", "core_dir"]
