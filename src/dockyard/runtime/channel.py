"""The line protocol between the runtime and the processes it forks (a pair of pipes).

Messages are single lines. Up (children → runtime): "cgroup", "map", "pid <n>", "go?", "hooks",
"ready", "error <text>". Down (runtime → children), each the answer to one request, so that only
the child that asked is reading: "mapped", "go", "ok <pid>". Children inherit both ends across
fork; the pipes are close-on-exec, so the container's program never sees them.
"""

from __future__ import annotations

import os


class ChildFailed(Exception):
    """A forked stage reported an error (or died before saying it was ready)."""


class Channel:
    def __init__(self) -> None:
        self.down_r, self.down_w = os.pipe()  # runtime → children
        self.up_r, self.up_w = os.pipe()      # children → runtime
        self._buf = b""

    # --- after fork: each side closes the ends it does not use -----------------------------------
    def parent_side(self) -> None:
        os.close(self.down_r)
        os.close(self.up_w)
        self.down_r = self.up_w = -1

    def child_side(self) -> None:
        os.close(self.down_w)
        os.close(self.up_r)
        self.down_w = self.up_r = -1

    def close(self) -> None:
        for name in ("down_r", "down_w", "up_r", "up_w"):
            fd = getattr(self, name)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)

    # --- messages ---------------------------------------------------------------------------------
    def send(self, msg: str) -> None:
        """From the runtime to its children."""
        os.write(self.down_w, (msg.replace("\n", " ") + "\n").encode())

    def reply(self, msg: str) -> None:
        """From a child to the runtime."""
        os.write(self.up_w, (msg.replace("\n", " ") + "\n").encode())

    def _readline(self, fd: int) -> str | None:
        while b"\n" not in self._buf:
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def recv(self) -> str | None:
        """The runtime reads the next message from its children (None at EOF)."""
        return self._readline(self.up_r)

    def wait_for(self, expected: str) -> None:
        """A child waits for the runtime's go-ahead; EOF or an unexpected word ends the child."""
        line = self._readline(self.down_r)
        if line != expected:
            os._exit(1)
