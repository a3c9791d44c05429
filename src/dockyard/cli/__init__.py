"""The `dockyard` command-line client (see main.py). Imports nothing at package level."""
