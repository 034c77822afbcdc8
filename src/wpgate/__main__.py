"""Lets `python -m wpgate` run the command line."""

from wpgate.cli import main

main()
