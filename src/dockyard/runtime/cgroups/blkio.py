"""Block I/O: v1 blkio (weight, per-device weight, throttling) and v2 io (weight, io.max); stats."""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import CgroupError, exists, read, write


def weight_to_v2(weight: int) -> int:
    """blkio weight (10..1000) → io.weight (1..10000), as runc converts."""
    return 0 if weight == 0 else 1 + (weight - 10) * 9999 // 990


def _weight_file(d: str, v2: bool) -> str | None:
    for name in (("io.bfq.weight", "io.weight") if v2 else ("blkio.weight", "blkio.bfq.weight")):
        if exists(d, name):
            return name
    return None


def set_v1(paths: dict[str, str], res: dict) -> None:
    b = res.get("blockIO") or {}
    d = paths.get("blkio")
    if not b or not d:
        return
    if b.get("weight"):
        f = _weight_file(d, False)
        if f is None:
            raise CgroupError("blkio weight is not supported by this kernel (no blkio.weight or blkio.bfq.weight; is the BFQ scheduler in use?)")
        write(d, f, b["weight"])
    if b.get("leafWeight") and exists(d, "blkio.leaf_weight"):
        write(d, "blkio.leaf_weight", b["leafWeight"])
    for wd in b.get("weightDevice") or []:
        f = "blkio.weight_device" if exists(d, "blkio.weight_device") else "blkio.bfq.weight_device"
        if wd.get("weight"):
            write(d, f, f"{wd['major']}:{wd['minor']} {wd['weight']}")
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for t in b.get(key) or []:
            write(d, name, f"{t['major']}:{t['minor']} {t['rate']}")


def set_v2(path: str, res: dict) -> None:
    b = res.get("blockIO") or {}
    if not b:
        return
    if b.get("weight"):
        f = _weight_file(path, True)
        if f is None:
            raise CgroupError("io weight is not supported by this kernel")
        write(path, f, b["weight"] if f == "io.bfq.weight" else weight_to_v2(int(b["weight"])))
    for wd in b.get("weightDevice") or []:
        if wd.get("weight"):
            write(path, "io.bfq.weight", f"{wd['major']}:{wd['minor']} {wd['weight']}")
    for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for t in b.get(key) or []:
            rate = t["rate"] or "max"
            write(path, "io.max", f"{t['major']}:{t['minor']} {name}={rate}")


def _parse_v1(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":")
        out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return out


def stats_v1(paths: dict[str, str], out: dict) -> None:
    d = paths.get("blkio")
    if not d:
        return
    b = {}
    for key, names in (("ioServiceBytesRecursive", ("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive")),
                       ("ioServicedRecursive", ("blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"))):
        for name in names:
            if exists(d, name):
                b[key] = _parse_v1(read(d, name))
                break
        else:
            b[key] = []
    out["blkio"] = b


def stats_v2(path: str, out: dict) -> None:
    byts: list[dict] = []
    ios: list[dict] = []
    try:
        text = read(path, "io.stat")
    except OSError:
        text = ""
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, key in (("Read", "rbytes"), ("Write", "wbytes")):
            byts.append({"major": major, "minor": minor, "op": op, "value": int(kv.get(key, 0))})
        for op, key in (("Read", "rios"), ("Write", "wios")):
            ios.append({"major": major, "minor": minor, "op": op, "value": int(kv.get(key, 0))})
    out["blkio"] = {"ioServiceBytesRecursive": byts, "ioServicedRecursive": ios}
