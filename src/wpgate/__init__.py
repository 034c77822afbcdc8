"""wpgate: replicate the WordPress updates tested on staging onto production, one gate at a time."""

__version__ = "0.1.0"
