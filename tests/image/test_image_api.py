"""The image routes of the Engine API on a real daemon: import, list/inspect/history/tag/rmi,
push → rmi → pull → run through a real registry, save/load, commit, /auth, /distribution, and
docker-py. The daemon must never block its event loop while serving them."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.parse

import pytest

from dockyard.image.auth import encode_header
from support.daemon import TestDaemon, busybox_daemon, busybox_tar


def _lines(x):
    """A streamed answer of one line comes back parsed as one object."""
    return [x] if isinstance(x, dict) else x


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = busybox_daemon(str(tmp_path_factory.mktemp("daemon")))
    yield d
    d.cleanup()


@pytest.fixture(autouse=True)
def _loop_guard(daemon: TestDaemon):
    yield
    found = daemon.loop_violations()
    if found:
        open(daemon.guardfile, "w").close()  # type: ignore[arg-type]
        pytest.fail("the daemon blocked its event loop:\n" + found[:4000])


def test_import_list_inspect_tag_history_rmi(daemon):
    st, lines = daemon.api("POST", "/images/create?fromSrc=-&repo=imported&tag=v1&changes=CMD%20%5B%22sh%22%5D", busybox_tar())
    assert st == 200, lines
    image_id = _lines(lines)[-1]["status"]
    assert image_id.startswith("sha256:")
    st, listing = daemon.api("GET", "/v1.43/images/json")
    assert st == 200 and any("imported:v1" in i["RepoTags"] for i in listing)
    st, info = daemon.api("GET", "/images/imported:v1/json")
    assert st == 200 and info["Id"] == image_id and info["Config"]["Cmd"] == ["sh"]
    assert info["GraphDriver"]["Name"] == "overlay2" and info["RootFS"]["Type"] == "layers"
    st, _ = daemon.api("POST", "/images/imported:v1/tag?repo=localhost:5000/team/app&tag=2")
    assert st == 201
    st, info = daemon.api("GET", "/images/localhost:5000/team/app:2/json")
    assert st == 200 and info["Id"] == image_id
    st, hist = daemon.api("GET", "/images/imported:v1/history")
    assert st == 200 and hist[0]["Id"] == image_id and hist[0]["Comment"] == "Imported from -"
    st, recs = daemon.api("DELETE", "/images/localhost:5000/team/app:2")
    assert st == 200 and recs == [{"Untagged": "localhost:5000/team/app:2"}]
    st, recs = daemon.api("DELETE", "/images/imported:v1")
    assert st == 200 and {"Deleted": image_id} in recs
    st, body = daemon.api("GET", "/images/imported:v1/json")
    assert st == 404 and body["message"] == "No such image: imported:v1"
    st, body = daemon.api("GET", "/images/json?filters=" + urllib.parse.quote(json.dumps({"nosuch": {"x": True}})))
    assert st == 400


def test_push_rmi_pull_run_through_a_registry(daemon, registry):
    ref = f"{registry.addr}/dyt/busybox"
    st, _ = daemon.api("POST", f"/images/busybox/tag?repo={ref}&tag=v1")
    assert st == 201
    st, lines = daemon.api("POST", f"/images/{ref}/push?tag=v1", headers={"X-Registry-Auth": encode_header({})})
    assert st == 200, lines
    assert lines[0] == {"status": f"The push refers to repository [{ref}]"}
    digest = [x for x in lines if "aux" in x][0]["aux"]["Digest"]
    st, _ = daemon.api("DELETE", f"/images/{ref}:v1")
    assert st == 200
    st, lines = daemon.api("POST", f"/images/create?fromImage={ref}&tag=v1")
    assert st == 200, lines
    assert lines[0] == {"status": "Pulling from dyt/busybox", "id": "v1"}
    assert lines[-1]["status"].startswith("Status: ")
    st, info = daemon.api("GET", f"/images/{ref}:v1/json")
    assert f"{ref}@{digest}" in info["RepoDigests"]
    cid, code, out = daemon.run(["echo", "pulled-and-ran"], image=f"{ref}:v1")
    assert code == 0 and out.strip() == b"pulled-and-ran"
    daemon.api("DELETE", f"/containers/{cid}?force=1")
    # a missing image is an HTTP error, not a stream
    st, body = daemon.api("POST", f"/images/create?fromImage={registry.addr}/nosuch&tag=latest")
    assert st == 404 and "not found" in body["message"]
    st, body = daemon.api("POST", "/images/create?fromImage=Bad_Name")
    assert st == 400 and "invalid reference format" in body["message"]
    st, dist = daemon.api("GET", f"/distribution/{ref}:v1/json")
    assert st == 200 and dist["Descriptor"]["digest"] == digest and dist["Platforms"][0]["os"] == "linux"


def test_save_load_and_commit(daemon):
    cid, code, _ = daemon.run(["sh", "-c", "echo committed > /note.txt"])
    assert code == 0
    st, r = daemon.api("POST", f"/commit?container={cid}&repo=committed&tag=v1&comment=hello&changes=CMD%20cat%20/note.txt")
    assert st == 201, r
    new_id = r["Id"]
    daemon.api("DELETE", f"/containers/{cid}?force=1")
    cid, code, out = daemon.run([], image="committed:v1")
    assert code == 0 and out.strip() == b"committed"
    daemon.api("DELETE", f"/containers/{cid}?force=1")
    st, (data, headers) = daemon.api("GET", "/images/get?names=committed:v1", raw=True)
    assert st == 200 and headers.get("Content-Type") == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["committed:v1"] and len(manifest[0]["Layers"]) == 2
    st, _ = daemon.api("DELETE", "/images/committed:v1")
    assert st == 200
    st, lines = daemon.api("POST", "/images/load?quiet=0", data)
    assert st == 200 and {"stream": "Loaded image: committed:v1\n"} in _lines(lines)
    st, info = daemon.api("GET", "/images/committed:v1/json")
    assert info["Id"] == new_id and info["Comment"] == "hello"


def test_auth_route(daemon, tmp_path):
    from image.registry_server import RegistryServer

    with RegistryServer(str(tmp_path / "reg"), auth="basic") as reg:
        st, body = daemon.api("POST", "/auth", {"username": "dyt", "password": "s3cret", "serveraddress": reg.addr})
        assert st == 200 and body["Status"] == "Login Succeeded"
        st, body = daemon.api("POST", "/auth", {"username": "dyt", "password": "nope", "serveraddress": reg.addr})
        assert st == 401 and body["message"].startswith(f'Get "http://{reg.addr}/v2/"')
        # a push with X-Registry-Auth credentials
        ref = f"{reg.addr}/priv/bb"
        daemon.api("POST", f"/images/busybox/tag?repo={ref}&tag=1")
        good = base64.urlsafe_b64encode(json.dumps({"username": "dyt", "password": "s3cret"}).encode()).decode()
        st, lines = daemon.api("POST", f"/images/{ref}/push?tag=1", headers={"X-Registry-Auth": good})
        assert st == 200 and not any("error" in x for x in _lines(lines)), lines


def test_docker_py_images_api(daemon, registry):
    client = daemon.docker_client()
    try:
        imgs = client.images.list()
        assert any("busybox:latest" in i.tags for i in imgs)
        img = client.images.get("busybox")
        assert img.attrs["Os"] == "linux"
        img.tag(f"{registry.addr}/py/busybox", "v1")
        client.images.push(f"{registry.addr}/py/busybox", tag="v1")
        client.images.remove(f"{registry.addr}/py/busybox:v1")
        pulled = client.images.pull(f"{registry.addr}/py/busybox", tag="v1")
        assert pulled.id == img.id
        assert client.images.prune()["SpaceReclaimed"] >= 0
    finally:
        client.close()


def test_commit_of_a_running_container_pauses_it_and_system_df_counts(daemon):
    import time

    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh", "-c", "echo made > /made; sleep 300"]})
    assert st == 201, r
    cid = r["Id"]
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        for _ in range(200):  # the file is there once the shell has run
            st, _ = daemon.api("GET", f"/containers/{cid}/archive?path=/made")
            if st == 200:
                break
            time.sleep(0.05)
        since = time.time()
        q = urllib.parse.urlencode([("container", cid), ("repo", "paused-commit"), ("tag", "v1"), ("author", "Ann"),
                                    ("comment", "msg"), ("changes", "ENV A=1"), ("changes", "CMD cat /made")])  # fmt: skip
        st, body = daemon.api("POST", f"/commit?{q}")
        assert st == 201, body
        new_id = body["Id"]
        st, events = daemon.api("GET", f"/events?since={since}&until={time.time() + 0.5}")
        actions = [e["Action"] for e in _lines(events) if e.get("id") == cid or e.get("Actor", {}).get("ID") == cid]
        assert "pause" in actions and "unpause" in actions and "commit" in actions, actions
        st, info = daemon.api("GET", f"/containers/{cid}/json")
        assert info["State"]["Running"] and not info["State"]["Paused"]
        st, img = daemon.api("GET", "/images/paused-commit:v1/json")
        assert img["Author"] == "Ann" and img["Comment"] == "msg" and "A=1" in img["Config"]["Env"]
        assert img["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /made"] and len(img["RootFS"]["Layers"]) == 2
        assert img["GraphDriver"]["Data"]["LowerDir"] and img["GraphDriver"]["Data"]["UpperDir"].endswith("/diff")
        st, df = daemon.api("GET", "/system/df")
        assert st == 200
        by_id = {i["Id"]: i for i in df["Images"]}
        base = by_id[img["Parent"]]
        assert base["Containers"] >= 1 and by_id[new_id]["Containers"] == 0
        assert by_id[new_id]["SharedSize"] == base["Size"] and by_id[new_id]["Size"] > base["Size"]
        assert df["LayersSize"] >= by_id[new_id]["Size"]
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
        daemon.api("DELETE", "/images/paused-commit:v1")


def test_prune_filters_are_checked(daemon):
    st, body = daemon.api("POST", "/images/prune?filters=" + urllib.parse.quote(json.dumps({"nosuch": ["x"]})))
    assert st == 400 and body["message"] == "invalid filter 'nosuch'"
    st, body = daemon.api("POST", "/images/prune?filters=" + urllib.parse.quote(json.dumps({"label!": ["nosuch=1"]})))
    assert st == 200 and "SpaceReclaimed" in body
