"""`--userns-remap`: whose subordinate ids the containers' root maps to, and the remapped data root.

What dockerd does at start-up, with its words for each failure:
- `parse_remap(spec)`: `default`, `user`, `user:group`, `uid`, `uid:gid` -> (user name, group
  name), names checked in /etc/passwd and /etc/group. `default` means `dockremap`, created when
  missing (`add_remap_user`: `useradd -r -s /bin/false`, then a 65536-wide subordinate range in
  /etc/subuid and /etc/subgid when it has none: the first free one at or above 100000, given with
  `usermod -v/-w` as Docker does).
- `load_mapping(user, group)`: the user's ranges from /etc/subuid and the group's from /etc/subgid
  (an entry names the user or its numeric id), laid end to end from container id 0.
- `setup(cfg)`: all of the above, then the data root as Docker lays it out: `<data-root>` 0711
  (group: the remapped root's), `<data-root>/<uid>.<gid>` 0710 root:<gid>, and every directory
  above it must let the remapped root through (o+x) or the daemon refuses to start. Returns the
  config with `data_root` moved there and `id_mapping` set; `root` maps to nothing (Docker turns
  user namespaces off then, with a warning).

For containers:
- `remapped(host_config)`: `--userns=host` opts out; `check_host_config`: Docker's refusals of
  --privileged, --network=host and --pid=host without it (400 at create).
- `pin_userns(path, mapping)` / `unpin_userns(path)` / `network_owner(path)`: a container's user
  namespace is made (and pinned at `<exec-root>/userns/<id>`) before its network namespace, which
  the network layer then creates inside it; the pin goes once the runtime created the container.
  `sweep_pins(dir)` removes pins a crash left.

Blocking (files, useradd, helpers): setup() runs once before the event loop starts; the pins
from worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import logging
import os
import pwd
import stat
import subprocess

from dockyard.storage.idshift import IdentityMapping

log = logging.getLogger("dockyard.idmap")

DEFAULT_SPECIFIER = "default"
DEFAULT_USER = "dockremap"
RANGE_START = 100000
RANGE_LEN = 65536
SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"


class RemapError(Exception):
    """A user-namespace configuration the daemon cannot start with (Docker's message)."""


# --- names ---------------------------------------------------------------------------------------
def _user_by_name(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise LookupError(f"user: unknown user {name}") from None


def _group_by_name(name: str) -> grp.struct_group:
    try:
        return grp.getgrnam(name)
    except KeyError:
        raise LookupError(f"group: unknown group {name}") from None


def _int32(s: str) -> int | None:
    try:
        v = int(s, 10)
    except ValueError:
        return None
    return v if -(2**31) <= v < 2**31 and s.lstrip("+-").isdigit() else None


def parse_remap(spec: str, create_default: bool = True) -> tuple[str, str]:
    """Docker's parseRemappedRoot: the option -> (user name, group name)."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise RemapError(f'Invalid user/group specification in --userns-remap: "{spec}"')
    username = groupname = ""
    uid = _int32(parts[0])
    if uid is not None:
        try:
            username = pwd.getpwuid(uid).pw_name
        except KeyError:
            raise RemapError(f"Uid {uid} has no entry in /etc/passwd: user: unknown userid {uid}") from None
        if len(parts) == 1:
            try:
                groupname = grp.getgrgid(uid).gr_name
            except KeyError:
                raise RemapError(f"Gid {uid} has no entry in /etc/group: group: unknown groupid {uid}") from None
    else:
        name = DEFAULT_USER if parts[0] == DEFAULT_SPECIFIER else parts[0]
        try:
            username = _user_by_name(name).pw_name
        except LookupError as e:
            if parts[0] != DEFAULT_SPECIFIER or not create_default:
                raise RemapError(f'Error during uid lookup for "{name}": {e}') from None
            try:
                add_remap_user(DEFAULT_USER)
            except (OSError, RuntimeError) as e2:
                raise RemapError(f'Error during "{DEFAULT_USER}" user creation: {e2}') from None
            return DEFAULT_USER, DEFAULT_USER
        if len(parts) == 1:
            try:
                groupname = _group_by_name(name).gr_name
            except LookupError as e:
                raise RemapError(f'Error during gid lookup for "{name}": {e}') from None
    if len(parts) == 2:
        gid = _int32(parts[1])
        if gid is not None:
            try:
                groupname = grp.getgrgid(gid).gr_name
            except KeyError:
                raise RemapError(f"Gid {gid} has no entry in /etc/passwd: group: unknown groupid {gid}") from None
        else:
            try:
                _group_by_name(parts[1])
            except LookupError as e:
                raise RemapError(f'Error during groupname lookup for "{parts[1]}": {e}') from None
            groupname = parts[1]
    return username, groupname


# --- /etc/subuid and /etc/subgid -----------------------------------------------------------------
def parse_subid_file(path: str) -> list[tuple[str, int, int]]:
    """(name or id, start, count) per valid line; a missing file has none."""
    out: list[tuple[str, int, int]] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3:
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start < 0 or count <= 0:
            continue
        out.append((fields[0], start, count))
    return out


def ranges_for(path: str, name: str, numeric_id: int) -> list[tuple[int, int]]:
    """The (start, count) ranges an id file gives `name` (or its numeric id), in file order."""
    ids = {name, str(numeric_id)}
    return [(start, count) for who, start, count in parse_subid_file(path) if who in ids]


def next_range_start(taken: list[tuple[int, int]], length: int = RANGE_LEN, start: int = RANGE_START) -> int:
    """The first id >= `start` where `length` ids overlap none of the `taken` (start, count) ranges."""
    cand = start
    for s, n in sorted(taken):
        if cand + length <= s:
            break
        cand = max(cand, s + n)
    return cand


def _run(argv: list[str]) -> None:
    cp = subprocess.run(argv, capture_output=True, text=True, check=False)
    if cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip()
        raise RuntimeError(f"{' '.join(argv)}: exit status {cp.returncode}: {msg}")


def add_remap_user(name: str, subuid: str = SUBUID, subgid: str = SUBGID) -> None:
    """Create the system user (and its group) `name` with a subordinate id range of its own."""
    try:
        _user_by_name(name)
    except LookupError:
        _run(["useradd", "-r", "-s", "/bin/false", name])
    try:
        _group_by_name(name)
    except LookupError:
        _run(["groupadd", "-r", name])
    pw = _user_by_name(name)
    gr = _group_by_name(name)
    if not ranges_for(subuid, name, pw.pw_uid):
        first = next_range_start([(s, n) for _, s, n in parse_subid_file(subuid)])
        _run(["usermod", "-v", f"{first}-{first + RANGE_LEN - 1}", name])
    if not ranges_for(subgid, name, gr.gr_gid):
        first = next_range_start([(s, n) for _, s, n in parse_subid_file(subgid)])
        _run(["usermod", "-w", f"{first}-{first + RANGE_LEN - 1}", name])


def load_mapping(username: str, groupname: str, subuid: str = SUBUID, subgid: str = SUBGID) -> IdentityMapping:
    """Docker's LoadIdentityMapping: the user's subuid ranges and the group's subgid ranges."""
    uid = _user_by_name(username).pw_uid
    gid = _group_by_name(groupname).gr_gid
    uranges = ranges_for(subuid, username, uid)
    if not uranges:
        raise RemapError(f'Can\'t create ID mappings: no subuid ranges found for user "{username}"')
    granges = ranges_for(subgid, groupname, gid)
    if not granges:
        raise RemapError(f'Can\'t create ID mappings: no subgid ranges found for group "{groupname}"')
    # the kernel takes at most 340 lines per map (5 before 4.15); one range is the usual case
    return IdentityMapping.from_ranges(uranges[:340], granges[:340])


# --- the data root -------------------------------------------------------------------------------
def _can_access(path: str, uid: int, gid: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    perms = stat.S_IMODE(st.st_mode)
    return bool(perms & 0o001 or (st.st_uid == uid and perms & 0o100) or (st.st_gid == gid and perms & 0o010))


def setup_root(data_root: str, root_uid: int, root_gid: int) -> str:
    """Docker's setupDaemonRoot with remapping: returns `<data_root>/<uid>.<gid>`."""
    if os.path.exists(data_root):
        os.chmod(data_root, 0o711)
    else:
        os.makedirs(data_root, 0o711)
    os.chown(data_root, os.getuid(), root_gid)
    remapped = os.path.join(data_root, f"{root_uid}.{root_gid}")
    try:
        os.mkdir(remapped, 0o710)
    except FileExistsError:
        pass
    os.chown(remapped, os.getuid(), root_gid)
    d = remapped
    while True:
        d = os.path.dirname(d)
        if d == "/":
            break
        if not _can_access(d, root_uid, root_gid):
            raise RemapError(f"a subdirectory in your graphroot path ({remapped}) restricts access to the remapped "
                             "root uid/gid; please fix by allowing 'o+x' permissions on existing directories")
    return remapped


def setup(cfg):  # noqa: ANN001, ANN201 - DaemonConfig in, DaemonConfig out
    """Resolve cfg.userns_remap; returns the config with the remapped data root and id mapping."""
    if not cfg.userns_remap:
        return cfg
    username, groupname = parse_remap(cfg.userns_remap)
    if username == "root":
        log.warning("User namespaces: root cannot be remapped with itself; user namespaces are OFF")
        return dataclasses.replace(cfg, userns_remap="")
    log.info("User namespaces: ID ranges will be mapped to subuid/subgid ranges of: %s", username)
    mapping = load_mapping(username, groupname)
    uid, gid = mapping.root_pair()
    try:
        root = setup_root(cfg.data_root, uid, gid)
    except OSError as e:
        raise RemapError(f"Cannot create daemon root: {os.path.join(cfg.data_root, f'{uid}.{gid}')}: {e}") from None
    return dataclasses.replace(cfg, data_root=root, userns_remap=f"{username}:{groupname}", id_mapping=mapping)


# --- containers ----------------------------------------------------------------------------------
def remapped(host_config: dict) -> bool:
    """Does a container of a remapping daemon run in the mapping? (`--userns=host` opts out.)"""
    return (host_config.get("UsernsMode") or "") != "host"


def check_host_config(host_config: dict) -> None:
    """Docker's refusals at create for a container in the daemon's user namespace mapping."""
    from dockyard.errors import InvalidParameter

    if not remapped(host_config):
        return
    if host_config.get("Privileged"):
        raise InvalidParameter("privileged mode is incompatible with user namespaces.  You must run the container "
                               "in the host namespace when running privileged mode")
    if (host_config.get("NetworkMode") or "") == "host":
        raise InvalidParameter("cannot share the host's network namespace when user namespaces are enabled")
    if (host_config.get("PidMode") or "") == "host":
        raise InvalidParameter("cannot share the host PID namespace when user namespaces are enabled")


# --- a container's user namespace, made before the container ------------------------------------
def pin_userns(path: str, mapping: IdentityMapping) -> str:
    """Make a user namespace with `mapping` and pin it at `path` (a bind mount of its nsfs file).

    The daemon makes it before the network layer builds the container's network namespace, which
    is then created inside it (network/netns.py `owner_userns`), and the runtime joins both by
    path: the container's root holds its network capabilities, as with runc under Docker. A
    helper process (`unshare --user`) is needed: a threaded process cannot enter a new user
    namespace. Blocking; returns `path`."""
    from dockyard.network.netns import pin_via_helper

    def write_maps(pid: int) -> None:
        uids, gids = mapping.oci()
        for name, maps in (("uid_map", uids), ("gid_map", gids)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps))

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    pin_via_helper(["unshare", "--user", "--", "sleep", "60"], "user", path, "creating a user namespace", write_maps)
    return path


def unpin_userns(path: str) -> None:
    """Drop a pin made by pin_userns (the namespace lives on while anything still uses it)."""
    from dockyard.sys import linux

    try:
        linux.umount(path, linux.MNT_DETACH)
    except OSError:
        pass
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def sweep_pins(directory: str) -> None:
    """Remove pins a crash left in `directory` (they are only held while a container starts)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        unpin_userns(os.path.join(directory, name))


@contextlib.contextmanager
def network_owner(userns_path: str | None):  # noqa: ANN201
    """Within the block, network namespaces the network layer creates (in worker threads started
    from this task) belong to the user namespace pinned at `userns_path`."""
    if not userns_path:
        yield
        return
    from dockyard.network import netns

    token = netns.owner_userns.set(userns_path)
    try:
        yield
    finally:
        netns.owner_userns.reset(token)
