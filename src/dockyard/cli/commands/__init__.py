"""One module per command family; main.py imports only the one a command needs."""
