"""What only the tests need (never shipped in the package): the CDN APIs' local stand-ins, the sshd on
loopback, headless Chromium rendering a page, report.json's schema check."""
