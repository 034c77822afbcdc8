"""What only the tests need (never shipped in the package): the CDN APIs' local stand-ins, report.json's schema check."""
