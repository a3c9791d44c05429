"""`dockyard login` and `dockyard logout`.

Owns: collecting credentials (flags, `--password-stdin`, or prompts with the password not
echoed), validating them through the daemon (`POST /auth`), and storing/removing them in
`~/.dockyard/config.json` in Docker's format (`auths.<server>.auth` = base64 "user:password").
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CLIError, Command, Ctx
from dockyard.cli.flags import Flag, Options
from dockyard.cli.registry_auth import (
    DOCKER_HUB,
    config_path,
    get_credentials,
    normalize_server,
    remove_credentials,
    store_credentials,
)


def _prompt(text: str, secret: bool) -> str:
    if secret and os.isatty(0):
        import getpass

        return getpass.getpass(text)
    sys.stdout.write(text)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise CLIError("Error: Cannot perform an interactive login from a non TTY device")
    return line.rstrip("\r\n")


def login(ctx: Ctx, opts: Options, args: list[str]) -> int:
    server = normalize_server(args[0]) if args else DOCKER_HUB
    username = opts["username"].strip()
    password = opts["password"]
    if password and not opts["password-stdin"]:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if opts["password-stdin"]:
        if password:
            raise CLIError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CLIError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username or not password:
        stored = get_credentials(ctx.config_dir, server)
        if not username:
            default = stored.get("username", "")
            hint = f" ({default})" if default else ""
            username = _prompt(f"Username{hint}: ", False).strip() or default
            if not username:
                raise CLIError("Error: Non-null Username Required")
        if not password:
            password = _prompt("Password: ", True)
            if not password:
                raise CLIError("Error: Password Required")
    resp = ctx.client.post("/auth", None, {"username": username, "password": password, "serveraddress": server}) or {}
    store_credentials(ctx.config_dir, server, username, password)
    sys.stderr.write(f"\nWARNING! Your credentials are stored unencrypted in '{config_path(ctx.config_dir)}'.\n"
                     "Configure a credential helper to remove this warning. See\n"
                     "https://docs.docker.com/go/credential-store/\n\n")
    sys.stdout.write((resp.get("Status") or "Login Succeeded") + "\n")
    return 0


def logout(ctx: Ctx, opts: Options, args: list[str]) -> int:
    server = normalize_server(args[0]) if args else DOCKER_HUB
    if remove_credentials(ctx.config_dir, server):
        sys.stdout.write(f"Removing login credentials for {server}\n")
    else:
        sys.stdout.write(f"Not logged in to {server}\n")
    return 0


LOGIN = Command("[OPTIONS] [SERVER]", login, max_args=1, flags=[
    Flag("password", "p", help="Password or Personal Access Token (PAT)"),
    Flag("password-stdin", kind="bool", help="Take the Password or Personal Access Token (PAT) from stdin"),
    Flag("username", "u", help="Username"),
])
LOGOUT = Command("[SERVER]", logout, max_args=1)
