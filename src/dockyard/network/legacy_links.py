"""Legacy container links (``--link name[:alias]``), as Docker does them. Pure functions.

On the default bridge a link makes the parent see its child: an ``/etc/hosts`` line
``<child ip>\\t<alias> <child hostname> [<child name>]``, environment variables describing the
child (`link_env`), and with ``--icc=false`` a hole in the wall for the child's exposed ports. On a
user-defined network a link is only a name: the alias resolves, through the embedded DNS and for
the parent alone, to the child's address on that network.

- `parse_link("web:db") -> ("web", "db")`; `/web:/app/db` (inspect's form) is accepted too.
- `hosts_names(alias, child_hostname, child_name)`: the names of the parent's hosts line.
- `link_env(parent_name, alias, child_ip, exposed_ports, child_env)`: Docker's variables
  (``DB_PORT``, ``DB_PORT_80_TCP{,_ADDR,_PORT,_PROTO}``, ``_START``/``_END`` for runs of
  consecutive ports, ``DB_NAME=/app/db``, ``DB_ENV_<name>`` for the child's env but HOME and PATH).
- `merge_env(env, link_env, config_env)`: where they go in the process environment (after PATH,
  HOSTNAME and TERM, before the container's own variables, which win).
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import InvalidParameter


def parse_link(spec: str) -> tuple[str, str]:
    """(child name or id, alias), with Docker's messages."""
    if not spec:
        raise InvalidParameter("empty string specified for links")
    parts = spec.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"bad format for links: {spec}")
    if len(parts) == 1:
        return spec.lstrip("/"), spec.lstrip("/")
    name, alias = parts
    if name.startswith("/"):  # "/web:/app/db", the form inspect shows
        return name[1:], alias.rsplit("/", 1)[-1]
    if not name or not alias:
        raise InvalidParameter(f"bad format for links: {spec}")
    return name, alias


def hosts_names(alias: str, child_hostname: str, child_name: str) -> str:
    """The parent's /etc/hosts names for a child: alias, hostname, and the name if different."""
    names = [alias]
    if child_hostname:
        names.append(child_hostname)
    if alias != child_name:
        names.append(child_name)
    return " ".join(names)


def _ports(exposed: dict[str, Any] | None) -> list[tuple[int, str]]:
    out = []
    for key in exposed or {}:
        port, _, proto = key.partition("/")
        try:
            out.append((int(port.split("-")[0]), (proto or "tcp").lower()))
        except ValueError:
            continue
    # by number; for one number tcp first (Docker's order, so runs of ports group together)
    return sorted(set(out), key=lambda p: (p[0], p[1] != "tcp", p[1]))


def link_env(
    parent_name: str,
    alias: str,
    child_ip: str,
    exposed_ports: dict[str, Any] | None,
    child_env: list[str] | None,
) -> list[str]:
    """The variables Docker gives a parent for one link."""
    prefix = alias.upper().replace("-", "_")
    env: list[str] = []
    ports = _ports(exposed_ports)
    start = end = ports[0] if ports else None
    for i, (port, proto) in enumerate(ports):
        if i == 0:
            env.append(f"{prefix}_PORT={proto}://{child_ip}:{port}")
        p = f"{prefix}_PORT_{port}_{proto.upper()}"
        env += [f"{p}={proto}://{child_ip}:{port}", f"{p}_ADDR={child_ip}", f"{p}_PORT={port}", f"{p}_PROTO={proto}"]
        assert start is not None and end is not None
        if port == end[0] + 1 and proto == start[1]:
            end = (port, proto)
            if i < len(ports) - 1:
                continue
        if end != start:
            p = f"{prefix}_PORT_{start[0]}_{start[1].upper()}"
            env += [
                f"{p}_START={start[1]}://{child_ip}:{start[0]}",
                f"{p}_PORT_START={start[0]}",
                f"{p}_END={end[1]}://{child_ip}:{end[0]}",
                f"{p}_PORT_END={end[0]}",
            ]
        start = end = (port, proto)
    env.append(f"{prefix}_NAME=/{parent_name.lstrip('/')}/{alias}")
    for item in child_env or []:
        name, eq, value = item.partition("=")
        if not eq or name in ("HOME", "PATH"):
            continue
        env.append(f"{prefix}_ENV_{name}={value}")
    return env


def merge_env(env: list[str], extra: list[str], config_env: list[str] | None) -> list[str]:
    """Insert `extra` (link variables) before the container's own variables; a variable the
    container sets itself wins (Docker: defaults, links, then Config.Env replacing or appending)."""
    if not extra:
        return list(env)
    own = {e.partition("=")[0] for e in config_env or []}
    extra = [e for e in extra if e.partition("=")[0] not in own]
    config_set = set(config_env or [])
    at = next((i for i, e in enumerate(env) if e in config_set), len(env))
    return env[:at] + extra + env[at:]
