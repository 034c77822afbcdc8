"""Lets `python -m wpgate` run the command line."""

from wpgate.launch import main

main()
