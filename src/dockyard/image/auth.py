"""Registry credentials in Docker's formats (standard library only: the CLI imports this).

- `~/.dockyard/config.json` (or `$DOCKYARD_CONFIG/config.json`) as Docker's `config.json`:
  `{"auths": {"<server>": {"auth": base64("user:password")}}}`; Docker Hub's key is
  `https://index.docker.io/v1/`.
- The `X-Registry-Auth` header: base64url of `{"username", "password", "serveraddress",
  "identitytoken", "registrytoken"}`.
"""

from __future__ import annotations

import base64
import json
import os

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def config_path() -> str:
    base = os.environ.get("DOCKYARD_CONFIG") or os.path.join(os.path.expanduser("~"), ".dockyard")
    return os.path.join(base, "config.json")


def server_key(domain: str) -> str:
    """The config.json key for a registry domain (Docker Hub's historic URL for docker.io)."""
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_KEY
    return domain


def _normalise_server(s: str) -> str:
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return s.split("/", 1)[0]


def load_config(path: str | None = None) -> dict:
    try:
        with open(path or config_path()) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def lookup(domain: str, path: str | None = None) -> dict | None:
    """Credentials for `domain` from config.json as an auth dict, or None."""
    auths = load_config(path).get("auths") or {}
    key = server_key(domain)
    entry = auths.get(key)
    if entry is None:
        for k, v in auths.items():
            if _normalise_server(k) == _normalise_server(key):
                entry = v
                break
    if not entry:
        return None
    out: dict = {"serveraddress": key}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        out["username"], out["password"] = user, password
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out


def store(domain: str, username: str, password: str, path: str | None = None) -> None:
    """Record credentials as `docker login` does (file mode 0600)."""
    path = path or config_path()
    cfg = load_config(path)
    cfg.setdefault("auths", {})[server_key(domain)] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(cfg, f, indent="\t")
    os.rename(tmp, path)


def erase(domain: str, path: str | None = None) -> bool:
    path = path or config_path()
    cfg = load_config(path)
    if cfg.get("auths", {}).pop(server_key(domain), None) is None:
        return False
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(cfg, f, indent="\t")
    os.rename(tmp, path)
    return True


def encode_header(auth: dict) -> str:
    """The X-Registry-Auth value for an auth dict."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def decode_header(value: str | None) -> dict | None:
    """An auth dict from an X-Registry-Auth header (padding optional, as Docker accepts)."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and data else None
