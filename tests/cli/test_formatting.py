"""Output formatting as the Docker CLI prints it: tables, sizes, durations, rows (pure)."""

from __future__ import annotations

import time

import pytest

from dockyard.cli.commands.images import image_rows
from dockyard.cli.commands.ps import HEADERS, ContainerRow, displayable_ports
from dockyard.cli.commands.system import df_rows, pretty_event
from dockyard.cli.common import filters_json, go_quote
from dockyard.cli.jsonfast import dumps, dumps_indent, loads
from dockyard.cli.reference import familiar, normalize
from dockyard.cli.table import render_list, tabwrite
from dockyard.cli.units import bytes_size, human_duration, human_size, parse_rfc3339, timestamp_arg


def test_tabwriter_like_go() -> None:
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n0123456789abcdef\tb\tlonger\n"
    assert tabwrite(text) == (
        "CONTAINER ID       IMAGE     NAMES\n"
        "abc                busybox   x\n"
        "0123456789abcdef   b         longer\n"
    )


def test_tabwriter_single_cell_lines_end_blocks() -> None:
    text = "a\tb\nsection\nlonger cell\tc\n"
    assert tabwrite(text, minwidth=1, padding=1) == "a b\nsection\nlonger cell c\n"


@pytest.mark.parametrize("size,prec,out", [
    (0, 4, "0B"), (999, 4, "999B"), (1000, 4, "1kB"), (1234567, 3, "1.23MB"), (4_260_000, 3, "4.26MB"),
    (1_984_000, 4, "1.984MB"), (10**12, 3, "1TB"),
])
def test_human_size(size: int, prec: int, out: str) -> None:
    assert human_size(size, prec) == out


def test_bytes_size() -> None:
    assert bytes_size(544 * 1024) == "544KiB"
    assert bytes_size(1.5 * 1024**3) == "1.5GiB"


@pytest.mark.parametrize("secs,out", [
    (0.5, "Less than a second"), (1, "1 second"), (3, "3 seconds"), (61, "About a minute"),
    (125, "2 minutes"), (3700, "About an hour"), (3 * 3600, "3 hours"), (3 * 86400, "3 days"),
    (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_human_duration(secs: float, out: str) -> None:
    assert human_duration(secs) == out


def test_rfc3339_and_timestamps() -> None:
    assert parse_rfc3339("1970-01-01T00:01:00Z") == 60
    assert parse_rfc3339("1970-01-01T01:00:00.5+01:00") == 0.5
    assert parse_rfc3339("0001-01-01T00:00:00Z") is None
    assert timestamp_arg("10m", now=1000.0) == "400"
    assert timestamp_arg("1700000000") == "1700000000"
    assert timestamp_arg("2024-01-02T03:04:05Z") == "1704164645"
    with pytest.raises(ValueError):
        timestamp_arg("yesterday")


def test_ports_summary() -> None:
    ports = [
        {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"},
        {"PrivatePort": 9000, "Type": "udp"}, {"PrivatePort": 9001, "Type": "udp"},
        {"PrivatePort": 5000, "Type": "tcp"},
        {"PrivatePort": 443, "PublicPort": 443, "Type": "tcp", "IP": "0.0.0.0"},
        {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "::"},
    ]
    assert displayable_ports(ports) == \
        "0.0.0.0:443->443/tcp, 5000/tcp, 9000-9001/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


def test_container_row_fields() -> None:
    now = time.time()
    c = {"Id": "a" * 64, "Names": ["/demo"], "Image": "busybox", "ImageID": "sha256:" + "b" * 64,
         "Command": "sh -c 'echo a long command line here'", "Created": int(now) - 5, "State": "exited",
         "Status": "Exited (0) 5 seconds ago", "Labels": {"z": "1", "a": "2"}, "SizeRw": 12, "SizeRootFs": 4_260_000,
         "Mounts": [{"Name": "vol", "Driver": "local"}], "NetworkSettings": {"Networks": {"bridge": {}}}}
    row = ContainerRow(c, True, now)
    assert row.ID() == "a" * 12
    assert row.Command() == '"sh -c \'echo a long …"'
    assert row.RunningFor() == "5 seconds ago"
    assert row.Size() == "12B (virtual 4.26MB)"
    assert row.Labels() == "a=2,z=1"
    assert row.LocalVolumes() == "1"
    out = render_list("table {{.ID}}\t{{.Names}}\t{{.Status}}", [row], HEADERS)
    assert out == ("CONTAINER ID   NAMES     STATUS\n"
                   "aaaaaaaaaaaa   demo      Exited (0) 5 seconds ago\n")
    doc = loads(render_list("{{json .}}", [row]))
    assert doc["Names"] == "demo" and doc["State"] == "exited" and list(doc) == sorted(doc)
    c["Ports"] = [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"}]
    assert '"Ports":"0.0.0.0:8080-\\u003e80/tcp"' in render_list("json", [row])  # Go's json.Marshal escapes


def test_image_rows_tags_digests_dangling() -> None:
    imgs = [
        {"Id": "sha256:" + "1" * 64, "RepoTags": ["busybox:latest", "localhost:5000/bb:v1"],
         "RepoDigests": ["localhost:5000/bb@sha256:" + "d" * 64], "Created": 0, "Size": 1_984_000},
        {"Id": "sha256:" + "2" * 64, "RepoTags": [], "RepoDigests": [], "Created": 0, "Size": 5},
    ]
    rows = image_rows(imgs, digests=False, trunc=True)
    assert [(r.Repository(), r.Tag(), r.ID()) for r in rows] == [
        ("busybox", "latest", "1" * 12), ("localhost:5000/bb", "v1", "1" * 12), ("<none>", "<none>", "2" * 12)]
    rows = image_rows(imgs, digests=True, trunc=False)
    assert rows[1].Digest() == "sha256:" + "d" * 64
    assert rows[0].ID() == "sha256:" + "1" * 64
    assert rows[0].Size() == "1.98MB"


def test_df_rows() -> None:
    d = {"LayersSize": 2000, "Images": [{"Containers": 1, "Size": 2000, "SharedSize": 0}],
         "Containers": [{"State": "exited", "SizeRw": 10}, {"State": "running", "SizeRw": 5}],
         "Volumes": [{"UsageData": {"RefCount": 0, "Size": 100}}], "BuildCache": []}
    rows = df_rows(d)
    assert [(r.Type(), r.TotalCount(), r.Active(), r.Size(), r.Reclaimable()) for r in rows] == [
        ("Images", "1", "1", "2kB", "0B (0%)"), ("Containers", "2", "1", "15B", "10B (66%)"),
        ("Local Volumes", "1", "0", "100B", "100B (100%)"), ("Build Cache", "0", "0", "0B", "0B")]


def test_event_line() -> None:
    ev = {"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "bb"}},
          "timeNano": 1_700_000_000_123_456_789}
    line = pretty_event(ev)
    assert line.endswith(" container start abc (image=bb, name=x)\n")
    assert ".123456789" in line


def test_filters_and_quote() -> None:
    assert filters_json(["status=exited", "label=a=b", "status=created"]) == \
        '{"status":{"exited":true,"created":true},"label":{"a=b":true}}'
    assert filters_json([]) is None
    assert go_quote('a "b"\n\x01') == '"a \\"b\\"\\n\\x01"'


def test_json_roundtrip_go_style() -> None:
    doc = loads(' {"a": [1, 2.5, true, null, "x<y>&\\u00e9"], "b": {}, "c": []} ')
    assert dumps(doc) == '{"a":[1,2.5,true,null,"x<y>&é"],"b":{},"c":[]}'
    assert dumps_indent({"a": [1], "b": {}}) == '{\n    "a": [\n        1\n    ],\n    "b": {}\n}'
    assert dumps(1e16) == "10000000000000000"


def test_reference_normalisation() -> None:
    assert normalize("busybox") == "docker.io/library/busybox:latest"
    assert normalize("user/repo:1") == "docker.io/user/repo:1"
    assert normalize("localhost:5000/a/b") == "localhost:5000/a/b:latest"
    assert familiar("docker.io/library/busybox:latest") == "busybox:latest"
    from dockyard.cli.command import CLIError

    with pytest.raises(CLIError, match="must be lowercase"):
        normalize("Busybox")
    with pytest.raises(CLIError, match="invalid reference format"):
        normalize("a//b")
