"""What only the tests need (never shipped in the package): the CDN APIs' local stand-ins, the sshd on
loopback, report.json's schema check."""
