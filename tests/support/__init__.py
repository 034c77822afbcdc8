"""Servers and stand-ins only the tests need (never shipped in the package): the CDN APIs' local stand-ins."""
