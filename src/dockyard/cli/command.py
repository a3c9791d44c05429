"""What every command shares: its declaration, the invocation context, and CLI-level errors.

Owns: `Command` (usage line, flags, argument count rules, handler), `Ctx` (global options, the
lazily created API client, streams, the config directory), `CLIError` / `StatusError` (how a
command reports failure and the process exit status), and Docker's usage/help texts.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import Flag, FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from dockyard.cli.client import Client
    from dockyard.cli.flags import Options

PROG = "dockyard"


class CLIError(Exception):
    """A failure the CLI reports itself: `message` on stderr, exit `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class StatusError(Exception):
    """Exit with `status` (a container's exit code), printing `message` if there is one."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ArgsError(CLIError):
    """Wrong number of positional arguments: printed with the usage line."""


class Command:
    """A command's declaration. `use` is the usage after the program and command path."""

    def __init__(self, use: str, func: Callable[[Ctx, Options, list[str]], int | None],
                 flags: Sequence[Flag] = (), min_args: int = 0, max_args: int | None = None,
                 interspersed: bool = True, short: str = "", see: bool = False, raw: bool = False) -> None:
        self.use = use
        self.func = func
        self.flag_specs = flags
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed
        self.short = short
        self.see = see  # run/create say "See '... --help'" where others say "Run"
        self.raw = raw  # arguments passed through unparsed (`dockyard daemon`)
        self.path = ""
        self.aliases: list[str] = []

    def flagset(self) -> FlagSet:
        return FlagSet(self.flag_specs, self.interspersed)

    def usage_line(self) -> str:
        return f"Usage:  {PROG} {self.path} {self.use}".rstrip()

    def check_args(self, args: list[str]) -> None:
        n = len(args)
        lo, hi = self.min_args, self.max_args
        name = f"'{PROG} {self.path}'"
        msg = ""
        if hi == 0 and n > 0:
            msg = f"{name} accepts no arguments"
        elif hi is not None and lo == hi and n != lo:
            msg = f"{name} requires {lo} argument{'s' if lo != 1 else ''}"
        elif n < lo and hi is not None and hi != lo:
            msg = f"{name} requires at least {lo} and at most {hi} argument{'s' if hi != 1 else ''}"
        elif n < lo:
            msg = f"{name} requires at least {lo} argument{'s' if lo != 1 else ''}"
        elif hi is not None and n > hi:
            msg = (f"{name} requires at least {lo} and at most {hi} argument{'s' if hi != 1 else ''}"
                   if lo else f"{name} requires at most {hi} argument{'s' if hi != 1 else ''}")
        if msg:
            raise ArgsError(msg)

    def help_text(self) -> str:
        parts = [self.usage_line(), "", self.short]
        if self.aliases and len(self.aliases) > 1:
            parts += ["", "Aliases:", "  " + ", ".join(self.aliases)]
        fs = self.flagset()
        if fs.flags:
            parts += ["", "Options:", fs.usages(_help_width())]
        return "\n".join(parts) + "\n"

    def hint(self, args_error: bool = False) -> str:
        verb = "See" if (self.see and args_error) else "Run"
        return f"{verb} '{PROG} {self.path} --help' for more information"


def _help_width() -> int:
    try:
        return os.get_terminal_size(1).columns - 1
    except OSError:
        return 79


class Ctx:
    """The invocation: global options, streams and the API client (created on first use)."""

    def __init__(self, hosts: list[str] | None = None, tls: dict[str, Any] | None = None,
                 config_dir: str | None = None, debug: bool = False) -> None:
        self.hosts = hosts
        self.tls = tls
        self.debug = debug
        self.config_dir = config_dir or os.environ.get("DOCKYARD_CONFIG") or os.path.join(
            os.path.expanduser("~"), ".dockyard")
        self._client: Client | None = None
        self.out = sys.stdout
        self.err = sys.stderr

    @property
    def client(self) -> Client:
        if self._client is None:
            from dockyard.cli.client import Client, resolve_host

            try:
                host, explicit = resolve_host(self.hosts)
                self._client = Client(host, explicit, self.tls)
            except ValueError as e:
                raise CLIError(str(e)) from None
        return self._client

    def config(self) -> dict[str, Any]:
        """~/.dockyard/config.json (Docker's config.json format), or {}."""
        from dockyard.cli.jsonfast import loads

        try:
            with open(os.path.join(self.config_dir, "config.json"), "rb") as f:
                doc = loads(f.read())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
