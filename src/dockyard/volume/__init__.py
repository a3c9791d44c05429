"""Volumes: the local driver (volume/local.py) behind /volumes and `-v name:/path`."""
