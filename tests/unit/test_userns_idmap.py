"""userns-remap's pure parts: id arithmetic (storage/idshift.py), /etc/subuid parsing and range
allocation, option parsing and Docker's refusals (daemon/idmap.py), the spec's user namespace, and
a layer tar through extraction with a mapping and back (same bytes, owners on disk shifted)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from dockyard.daemon import idmap, oci_spec
from dockyard.errors import InvalidParameter
from dockyard.storage import archive
from dockyard.storage.idshift import IDENTITY, IdentityMapping, IDMap

M = IdentityMapping((IDMap(0, 100000, 65536),), (IDMap(0, 200000, 65536),))


def test_mapping_arithmetic() -> None:
    assert M.root_pair() == (100000, 200000)
    assert M.to_host(0, 0) == (100000, 200000)
    assert M.to_host(1000, 5) == (101000, 200005)
    assert M.to_container(101000, 200005) == (1000, 5)
    with pytest.raises(InvalidParameter, match="Container ID 65536 cannot be mapped to a host ID"):
        M.to_host(65536, 0)
    with pytest.raises(InvalidParameter, match="Host ID 0 cannot be mapped to a container ID"):
        M.to_container(0, 200000)
    assert M.to_container_or_overflow(0, 200001) == (65534, 1)
    assert IDENTITY.empty and IDENTITY.to_host(7, 8) == (7, 8) and IDENTITY.root_pair() == (0, 0)
    assert M.oci() == ([{"containerID": 0, "hostID": 100000, "size": 65536}],
                       [{"containerID": 0, "hostID": 200000, "size": 65536}])  # fmt: skip
    assert IdentityMapping.from_json(M.to_json()) == M


def test_ranges_laid_end_to_end() -> None:
    m = IdentityMapping.from_ranges([(100000, 1000), (300000, 64536)], [(100000, 65536)])
    assert m.to_host(999, 0) == (100999, 100000)
    assert m.to_host(1000, 0) == (300000, 100000)
    assert m.to_container(300001, 100001) == (1001, 1)


def test_subid_files_and_next_range(tmp_path) -> None:  # noqa: ANN001
    p = tmp_path / "subuid"
    p.write_text("# comment\nalice:100000:65536\n1001:165536:65536\nbroken\nbob:x:1\nalice:500000:10\n")
    assert idmap.parse_subid_file(str(p)) == [("alice", 100000, 65536), ("1001", 165536, 65536), ("alice", 500000, 10)]
    assert idmap.ranges_for(str(p), "alice", 1000) == [(100000, 65536), (500000, 10)]
    assert idmap.ranges_for(str(p), "carol", 1001) == [(165536, 65536)]  # by numeric id
    assert idmap.parse_subid_file(str(tmp_path / "missing")) == []
    assert idmap.next_range_start([]) == 100000
    assert idmap.next_range_start([(100000, 65536), (165536, 65536)]) == 231072
    assert idmap.next_range_start([(200000, 65536)]) == 100000  # the gap below fits
    assert idmap.next_range_start([(150000, 10)]) == 150010
    assert idmap.next_range_start([(50000, 60000)]) == 110000


def test_parse_remap_forms() -> None:
    assert idmap.parse_remap("0") == ("root", "root")
    assert idmap.parse_remap("root:root") == ("root", "root")
    assert idmap.parse_remap("65534:65534") == ("nobody", "nogroup")
    assert idmap.parse_remap("nobody:nogroup") == ("nobody", "nogroup")
    assert idmap.parse_remap("daemon") == ("daemon", "daemon")
    with pytest.raises(idmap.RemapError, match=r'Invalid user/group specification in --userns-remap: "a:b:c"'):
        idmap.parse_remap("a:b:c")
    with pytest.raises(idmap.RemapError, match='Error during uid lookup for "dytnosuch"'):
        idmap.parse_remap("dytnosuch")
    with pytest.raises(idmap.RemapError, match='Error during groupname lookup for "dytnosuchgroup"'):
        idmap.parse_remap("nobody:dytnosuchgroup")
    with pytest.raises(idmap.RemapError, match="Uid 3999999 has no entry in /etc/passwd"):
        idmap.parse_remap("3999999")


def test_load_mapping_needs_ranges(tmp_path) -> None:  # noqa: ANN001
    uid_file, gid_file = tmp_path / "subuid", tmp_path / "subgid"
    uid_file.write_text("nobody:300000:65536\n")
    gid_file.write_text("")
    with pytest.raises(idmap.RemapError, match='no subgid ranges found for group "nogroup"'):
        idmap.load_mapping("nobody", "nogroup", str(uid_file), str(gid_file))
    gid_file.write_text("65534:400000:65536\n")
    m = idmap.load_mapping("nobody", "nogroup", str(uid_file), str(gid_file))
    assert m.root_pair() == (300000, 400000)
    with pytest.raises(idmap.RemapError, match='Can\'t create ID mappings: no subuid ranges found for user "daemon"'):
        idmap.load_mapping("daemon", "daemon", str(uid_file), str(gid_file))


def test_docker_refusals_under_remap() -> None:
    idmap.check_host_config({})
    idmap.check_host_config({"UsernsMode": "host", "Privileged": True, "NetworkMode": "host", "PidMode": "host"})
    for hc, msg in (({"Privileged": True}, "privileged mode is incompatible with user namespaces"),
                    ({"NetworkMode": "host"}, "cannot share the host's network namespace"),
                    ({"PidMode": "host"}, "cannot share the host PID namespace")):  # fmt: skip
        with pytest.raises(InvalidParameter, match=msg):
            idmap.check_host_config(hc)


def _spec(**kw: object) -> dict:
    inp = oci_spec.SpecInputs(container_id="c" * 64, config={}, host_config={}, rootfs="/r", args=["sh"], **kw)  # type: ignore[arg-type]
    return oci_spec.build_spec(inp)


def test_spec_joins_a_user_namespace_by_path() -> None:
    s = _spec(id_mappings=M.oci(), namespace_paths={"user": "/proc/42/ns/user"})
    assert {"type": "user", "path": "/proc/42/ns/user"} in s["linux"]["namespaces"]
    assert "uidMappings" not in s["linux"]
    s = _spec(id_mappings=M.oci())
    assert {"type": "user"} in s["linux"]["namespaces"] and s["linux"]["uidMappings"][0]["hostID"] == 100000


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, uid, kind in (("etc", 0, tarfile.DIRTYPE), ("etc/passwd", 0, tarfile.REGTYPE),
                                ("home/u/file", 1000, tarfile.REGTYPE), ("home/.wh.gone", 0, tarfile.REGTYPE)):  # fmt: skip
            ti = tarfile.TarInfo(name)
            ti.type, ti.uid, ti.gid, ti.mode, ti.mtime = kind, uid, uid, 0o755 if kind == tarfile.DIRTYPE else 0o644, 1
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_layer_round_trip_with_a_mapping(tmp_path) -> None:  # noqa: ANN001
    root = tmp_path / "diff"
    root.mkdir()
    archive.apply_layer(io.BytesIO(_layer()), str(root), M)
    st = os.lstat(root / "etc" / "passwd")
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    st = os.lstat(root / "home" / "u" / "file")
    assert (st.st_uid, st.st_gid) == (101000, 201000)
    st = os.lstat(root / "home")  # implied by the tar, made for the remapped root
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    for tree in (root,):
        for d in ("home", "home/u"):  # implied directories get the extraction time: pin it
            os.utime(tree / d, (5, 5))
    out = io.BytesIO()
    archive.export_diff(str(root), out, idmap=M)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        owners = {m.name: (m.uid, m.gid) for m in tf.getmembers()}
    assert owners["etc/passwd"] == (0, 0) and owners["home/u/file"] == (1000, 1000) and owners["home/.wh.gone"] == (0, 0)
    # the same tree without the mapping exports the same bytes a daemon without remapping would
    plain = tmp_path / "plain"
    plain.mkdir()
    archive.apply_layer(io.BytesIO(_layer()), str(plain))
    for d in ("home", "home/u"):
        os.utime(plain / d, (5, 5))
    ref = io.BytesIO()
    archive.export_diff(str(plain), ref)
    assert hashlib.sha256(ref.getvalue()).digest() == hashlib.sha256(out.getvalue()).digest()
    # an id outside the range is refused, as in Docker
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tf:
        ti = tarfile.TarInfo("x")
        ti.uid = 70000
        tf.addfile(ti, io.BytesIO(b""))
    (tmp_path / "bad").mkdir()
    with pytest.raises(InvalidParameter, match="Container ID 70000 cannot be mapped to a host ID"):
        archive.apply_layer(io.BytesIO(bad.getvalue()), str(tmp_path / "bad"), M)


def test_daemon_json_key_and_flag(tmp_path) -> None:  # noqa: ANN001
    from dockyard.daemon import config

    f = tmp_path / "daemon.json"
    f.write_text('{"userns-remap": "default"}')
    assert config.load(["--config-file", str(f)]).userns_remap == "default"
    assert config.load(["--config-file", str(f), "--userns-remap", "nobody:nogroup"]).userns_remap == "nobody:nogroup"
    f.write_text("{}")
    cfg = config.load(["--config-file", str(f)])
    assert cfg.userns_remap == "" and cfg.id_mapping is None
    assert idmap.setup(cfg) is cfg  # nothing to do without the option
