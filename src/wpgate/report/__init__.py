"""`wpgate report`: a run's record told for people, as Markdown for a ticket or one HTML page for a client."""

from wpgate.report.facts import Facts, load

__all__ = ["Facts", "load"]
