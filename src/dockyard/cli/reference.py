"""Image references on the client, as docker/distribution's `reference` package parses them.

Owns: validating a reference (`invalid reference format` and its variants), normalising it
(`busybox` -> `docker.io/library/busybox:latest`) and the familiar short form.
"""

from __future__ import annotations

from dockyard.cli.command import CLIError

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _valid_path_component(c: str) -> bool:
    if not c or c[0] not in _ALNUM or c[-1] not in _ALNUM:
        return False
    i = 0
    while i < len(c):
        ch = c[i]
        if ch in _ALNUM:
            i += 1
            continue
        # separators: '.', '_', '__', or one or more '-'
        if ch == "." or ch == "_":
            if c.startswith("__", i):
                i += 2
            else:
                i += 1
        elif ch == "-":
            while i < len(c) and c[i] == "-":
                i += 1
        else:
            return False
        if i >= len(c) or c[i] not in _ALNUM:
            return False
    return True


def _valid_domain(d: str) -> bool:
    host, _, port = d.partition(":")
    if port and not port.isdigit():
        return False
    if host.startswith("[") and host.endswith("]"):
        return True
    for label in host.split("."):
        if not label or not label[0].isalnum() or not label[-1].isalnum():
            return False
        if not all(ch.isalnum() or ch == "-" for ch in label):
            return False
    return True


def split(ref: str) -> tuple[str, str, str, str]:
    """(domain, path, tag, digest) of a normalised reference; raises CLIError on bad input."""
    if not ref:
        raise CLIError("invalid reference format")
    name, _, digest = ref.partition("@")
    if digest:
        algo, _, hexpart = digest.partition(":")
        if not algo or not hexpart or not all(ch in "0123456789abcdef" for ch in hexpart):
            raise CLIError("invalid reference format")
        if algo == "sha256" and len(hexpart) != 64:
            raise CLIError("invalid checksum digest length")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not tag or len(tag) > 128 or not (tag[0].isalnum() or tag[0] == "_") or \
                not all(ch.isalnum() or ch in "_.-" for ch in tag) or not tag.isascii():
            raise CLIError("invalid reference format")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _valid_domain(domain):
            raise CLIError("invalid reference format")
    else:
        domain, path = "docker.io", name
    if domain in ("docker.io", "index.docker.io") and "/" not in path:
        path = "library/" + path
    if domain == "index.docker.io":
        domain = "docker.io"
    if path != path.lower():
        raise CLIError(f"invalid reference format: repository name ({path}) must be lowercase")
    if not all(_valid_path_component(c) for c in path.split("/")):
        raise CLIError("invalid reference format")
    if len(domain) + 1 + len(path) > 255:
        raise CLIError("invalid reference format: repository name must not be more than 255 characters")
    return domain, path, tag, digest


def normalize(ref: str, default_tag: bool = True) -> str:
    """'busybox' -> 'docker.io/library/busybox:latest'."""
    domain, path, tag, digest = split(ref)
    out = f"{domain}/{path}"
    if tag:
        out += ":" + tag
    elif default_tag and not digest:
        out += ":latest"
    if digest:
        out += "@" + digest
    return out


def familiar(ref: str) -> str:
    """'docker.io/library/busybox:latest' -> 'busybox:latest'."""
    domain, path, tag, digest = split(ref)
    name = f"{domain}/{path}"
    if domain == "docker.io":
        name = path[8:] if path.startswith("library/") and path.count("/") == 1 else path
    if tag:
        name += ":" + tag
    if digest:
        name += "@" + digest
    return name
