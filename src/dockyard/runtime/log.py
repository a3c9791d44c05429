"""Messages from the runtime: errors and warnings on stderr in logfmt (`level=error msg="..."`,
which runc prints and its callers parse), and into `--log FILE` as text or JSON lines."""

from __future__ import annotations

import os

LOG_FILE = ""
LOG_FORMAT = "text"
DEBUG = False


def _time() -> str:
    from dockyard.runtime.state import now_rfc3339

    return now_rfc3339()


def _quote(msg: str) -> str:
    return '"' + msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _emit(level: str, msg: str, to_stderr: bool = True) -> None:
    t = _time()
    line = f"time={_quote(t)} level={level} msg={_quote(msg)}\n"
    if to_stderr:
        try:
            os.write(2, line.encode())
        except OSError:
            pass
    if LOG_FILE:
        if LOG_FORMAT == "json":
            from dockyard.runtime import jsonfast

            out = jsonfast.dumps({"level": level, "msg": msg, "time": t}) + "\n"
        else:
            out = line
        try:
            fd = os.open(LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, out.encode())
            finally:
                os.close(fd)
        except OSError:
            pass


def error(msg: str) -> None:
    _emit("error", msg)


def warn(msg: str) -> None:
    _emit("warning", msg)


def debug(msg: str) -> None:
    if DEBUG:
        _emit("debug", msg)
