"""Registry credentials on the client: ~/.dockyard/config.json and the X-Registry-Auth header.

Owns: finding the registry host of an image reference (Docker's rule: the first path component
is a registry if it has a '.' or ':' or is 'localhost'; otherwise Docker Hub, whose config key
is `https://index.docker.io/v1/`), reading `auths.<host>.auth` (base64 "user:password") or an
identity token, writing and removing entries (login/logout), and encoding the header value
(base64url of the JSON AuthConfig) as Docker's client does.
"""

from __future__ import annotations

import binascii
import os

from dockyard.cli.jsonfast import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DOCKER_HUB = "https://index.docker.io/v1/"


def registry_of(ref: str) -> str:
    """'busybox' -> Docker Hub's key; 'localhost:5000/x' -> 'localhost:5000'."""
    first, slash, _rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            return DOCKER_HUB
        return first
    return DOCKER_HUB


def normalize_server(server: str) -> str:
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    if s in ("docker.io", "index.docker.io", "registry-1.docker.io", ""):
        return DOCKER_HUB
    return s


def b64encode(data: bytes, url: bool = False) -> str:
    text = binascii.b2a_base64(data, newline=False).decode()
    return text.replace("+", "-").replace("/", "_") if url else text


def b64decode(text: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    return binascii.a2b_base64(text)


def config_path(config_dir: str) -> str:
    return os.path.join(config_dir, "config.json")


def load_config(config_dir: str) -> dict[str, Any]:
    try:
        with open(config_path(config_dir), "rb") as f:
            doc = loads(f.read())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save_config(config_dir: str, doc: dict[str, Any]) -> None:
    os.makedirs(config_dir, mode=0o700, exist_ok=True)
    path = config_path(config_dir)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        from dockyard.cli.jsonfast import dumps_indent

        os.write(fd, (dumps_indent(doc, "\t") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _lookup(auths: dict[str, Any], server: str) -> dict[str, Any] | None:
    if server in auths:
        return auths[server]
    for key, value in auths.items():
        if normalize_server(key) == normalize_server(server):
            return value
    return None


def get_credentials(config_dir: str, server: str) -> dict[str, str]:
    """AuthConfig for `server` (username, password or identitytoken, serveraddress), or {}."""
    doc = load_config(config_dir)
    entry = _lookup(doc.get("auths") or {}, server)
    if not entry:
        return {}
    out: dict[str, str] = {"serveraddress": server}
    if entry.get("auth"):
        try:
            user, _, password = b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return {}
        out["username"] = user
        out["password"] = password
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out


def encoded_auth_for(config_dir: str, ref: str) -> str:
    """The X-Registry-Auth value for pulling/pushing `ref` ("e30=" — `{}` — when anonymous)."""
    creds = get_credentials(config_dir, registry_of(ref))
    return b64encode(dumps(creds).encode(), url=True)


def store_credentials(config_dir: str, server: str, username: str, password: str) -> None:
    doc = load_config(config_dir)
    auths = doc.setdefault("auths", {})
    auths[server] = {"auth": b64encode(f"{username}:{password}".encode())}
    save_config(config_dir, doc)


def remove_credentials(config_dir: str, server: str) -> bool:
    doc = load_config(config_dir)
    auths = doc.get("auths") or {}
    removed = False
    for key in list(auths):
        if key == server or normalize_server(key) == normalize_server(server):
            del auths[key]
            removed = True
    if removed:
        save_config(config_dir, doc)
    return removed
