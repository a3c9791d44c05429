"""`dockyard`: entry point. Global options, command lookup and dispatch, exit statuses.

Owns: the command registry (path -> module, handler, one-line description; modules are imported
only when their command runs, so `dockyard ps` loads a few standard-library modules), top-level
and group help, and mapping errors to Docker's messages and exit codes: flag errors 125,
argument-count errors 1, `Error response from daemon: ...` 1 (run/create: 125).
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import PROG, ArgsError, CLIError, Command, Ctx, StatusError
from dockyard.cli.flags import Flag, FlagError, FlagSet, HelpRequested

# (path, module under dockyard.cli.commands, attribute, description, section)
# section: "common", "mgmt" (groups), "cmd" (top-level), "" (only inside a group)
REGISTRY: list[tuple[str, str, str, str, str]] = [
    ("run", "run", "RUN", "Create and run a new container from an image", "common"),
    ("build", "build", "BUILD", "Build an image from a Dockerfile", "common"),
    ("exec", "exec_", "EXEC", "Execute a command in a running container", "common"),
    ("ps", "ps", "PS", "List containers", "common"),
    ("pull", "images", "PULL", "Download an image from a registry", "common"),
    ("push", "images", "PUSH", "Upload an image to a registry", "common"),
    ("images", "images", "IMAGES", "List images", "common"),
    ("login", "auth", "LOGIN", "Authenticate to a registry", "common"),
    ("logout", "auth", "LOGOUT", "Log out from a registry", "common"),
    ("version", "system", "VERSION", "Show the Dockyard version information", "common"),
    ("info", "system", "INFO", "Display system-wide information", "common"),
    ("attach", "exec_", "ATTACH", "Attach local standard input, output, and error streams to a running container", "cmd"),
    ("commit", "misc", "COMMIT", "Create a new image from a container's changes", "cmd"),
    ("cp", "cp", "CP", "Copy files/folders between a container and the local filesystem", "cmd"),
    ("create", "run", "CREATE", "Create a new container", "cmd"),
    ("daemon", "daemon", "DAEMON", "Run the dockyard daemon in the foreground", "cmd"),
    ("diff", "misc", "DIFF", "Inspect changes to files or directories on a container's filesystem", "cmd"),
    ("events", "system", "EVENTS", "Get real time events from the server", "cmd"),
    ("export", "misc", "EXPORT", "Export a container's filesystem as a tar archive", "cmd"),
    ("history", "images", "HISTORY", "Show the history of an image", "cmd"),
    ("import", "images", "IMPORT", "Import the contents from a tarball to create a filesystem image", "cmd"),
    ("inspect", "inspect", "INSPECT", "Return low-level information on Dockyard objects", "cmd"),
    ("kill", "lifecycle", "KILL", "Kill one or more running containers", "cmd"),
    ("load", "images", "LOAD", "Load an image from a tar archive or STDIN", "cmd"),
    ("logs", "logs", "LOGS", "Fetch the logs of a container", "cmd"),
    ("mkimage", "mkimage", "MKIMAGE", "Make a base image offline (busybox, debian)", "cmd"),
    ("pause", "lifecycle", "PAUSE", "Pause all processes within one or more containers", "cmd"),
    ("port", "misc", "PORT", "List port mappings or a specific mapping for the container", "cmd"),
    ("rename", "lifecycle", "RENAME", "Rename a container", "cmd"),
    ("restart", "lifecycle", "RESTART", "Restart one or more containers", "cmd"),
    ("rm", "lifecycle", "RM", "Remove one or more containers", "cmd"),
    ("rmi", "images", "RMI", "Remove one or more images", "cmd"),
    ("save", "images", "SAVE", "Save one or more images to a tar archive (streamed to STDOUT by default)", "cmd"),
    ("start", "lifecycle", "START", "Start one or more stopped containers", "cmd"),
    ("stats", "stats", "STATS", "Display a live stream of container(s) resource usage statistics", "cmd"),
    ("stop", "lifecycle", "STOP", "Stop one or more running containers", "cmd"),
    ("tag", "images", "TAG", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", "cmd"),
    ("top", "misc", "TOP", "Display the running processes of a container", "cmd"),
    ("unpause", "lifecycle", "UNPAUSE", "Unpause all processes within one or more containers", "cmd"),
    ("update", "lifecycle", "UPDATE", "Update configuration of one or more containers", "cmd"),
    ("wait", "lifecycle", "WAIT", "Block until one or more containers stop, then print their exit codes", "cmd"),
    # container group
    ("container attach", "exec_", "ATTACH", "Attach local standard input, output, and error streams to a running container", ""),
    ("container commit", "misc", "COMMIT", "Create a new image from a container's changes", ""),
    ("container cp", "cp", "CP", "Copy files/folders between a container and the local filesystem", ""),
    ("container create", "run", "CREATE", "Create a new container", ""),
    ("container diff", "misc", "DIFF", "Inspect changes to files or directories on a container's filesystem", ""),
    ("container exec", "exec_", "EXEC", "Execute a command in a running container", ""),
    ("container export", "misc", "EXPORT", "Export a container's filesystem as a tar archive", ""),
    ("container inspect", "inspect", "CONTAINER_INSPECT", "Display detailed information on one or more containers", ""),
    ("container kill", "lifecycle", "KILL", "Kill one or more running containers", ""),
    ("container logs", "logs", "LOGS", "Fetch the logs of a container", ""),
    ("container ls", "ps", "PS", "List containers", ""),
    ("container list", "ps", "PS", "List containers", "alias"),
    ("container ps", "ps", "PS", "List containers", "alias"),
    ("container pause", "lifecycle", "PAUSE", "Pause all processes within one or more containers", ""),
    ("container port", "misc", "PORT", "List port mappings or a specific mapping for the container", ""),
    ("container prune", "misc", "CONTAINER_PRUNE", "Remove all stopped containers", ""),
    ("container rename", "lifecycle", "RENAME", "Rename a container", ""),
    ("container restart", "lifecycle", "RESTART", "Restart one or more containers", ""),
    ("container rm", "lifecycle", "RM", "Remove one or more containers", ""),
    ("container remove", "lifecycle", "RM", "Remove one or more containers", "alias"),
    ("container run", "run", "RUN", "Create and run a new container from an image", ""),
    ("container start", "lifecycle", "START", "Start one or more stopped containers", ""),
    ("container stats", "stats", "STATS", "Display a live stream of container(s) resource usage statistics", ""),
    ("container stop", "lifecycle", "STOP", "Stop one or more running containers", ""),
    ("container top", "misc", "TOP", "Display the running processes of a container", ""),
    ("container unpause", "lifecycle", "UNPAUSE", "Unpause all processes within one or more containers", ""),
    ("container update", "lifecycle", "UPDATE", "Update configuration of one or more containers", ""),
    ("container wait", "lifecycle", "WAIT", "Block until one or more containers stop, then print their exit codes", ""),
    # image group
    ("image build", "build", "BUILD", "Build an image from a Dockerfile", ""),
    ("image history", "images", "HISTORY", "Show the history of an image", ""),
    ("image import", "images", "IMPORT", "Import the contents from a tarball to create a filesystem image", ""),
    ("image inspect", "inspect", "IMAGE_INSPECT", "Display detailed information on one or more images", ""),
    ("image load", "images", "LOAD", "Load an image from a tar archive or STDIN", ""),
    ("image ls", "images", "IMAGES", "List images", ""),
    ("image list", "images", "IMAGES", "List images", "alias"),
    ("image prune", "images", "IMAGE_PRUNE", "Remove unused images", ""),
    ("image pull", "images", "PULL", "Download an image from a registry", ""),
    ("image push", "images", "PUSH", "Upload an image to a registry", ""),
    ("image rm", "images", "RMI", "Remove one or more images", ""),
    ("image remove", "images", "RMI", "Remove one or more images", "alias"),
    ("image save", "images", "SAVE", "Save one or more images to a tar archive (streamed to STDOUT by default)", ""),
    ("image tag", "images", "TAG", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", ""),
    # builder group
    ("builder build", "build", "BUILD", "Build an image from a Dockerfile", ""),
    ("builder prune", "build", "BUILDER_PRUNE", "Remove build cache", ""),
    # volume group
    ("volume create", "volume", "CREATE", "Create a volume", ""),
    ("volume inspect", "volume", "INSPECT", "Display detailed information on one or more volumes", ""),
    ("volume ls", "volume", "LS", "List volumes", ""),
    ("volume list", "volume", "LS", "List volumes", "alias"),
    ("volume prune", "volume", "PRUNE", "Remove unused local volumes", ""),
    ("volume rm", "volume", "RM", "Remove one or more volumes", ""),
    ("volume remove", "volume", "RM", "Remove one or more volumes", "alias"),
    # network group
    ("network connect", "network", "CONNECT", "Connect a container to a network", ""),
    ("network create", "network", "CREATE", "Create a network", ""),
    ("network disconnect", "network", "DISCONNECT", "Disconnect a container from a network", ""),
    ("network inspect", "network", "INSPECT", "Display detailed information on one or more networks", ""),
    ("network ls", "network", "LS", "List networks", ""),
    ("network list", "network", "LS", "List networks", "alias"),
    ("network prune", "network", "PRUNE", "Remove all unused networks", ""),
    ("network rm", "network", "RM", "Remove one or more networks", ""),
    ("network remove", "network", "RM", "Remove one or more networks", "alias"),
    # system group
    ("system df", "system", "DF", "Show dockyard disk usage", ""),
    ("system events", "system", "EVENTS", "Get real time events from the server", ""),
    ("system info", "system", "INFO", "Display system-wide information", ""),
    ("system prune", "system", "PRUNE", "Remove unused data", ""),
]

GROUPS = {
    "builder": "Manage builds",
    "container": "Manage containers",
    "image": "Manage images",
    "network": "Manage networks",
    "system": "Manage Dockyard",
    "volume": "Manage volumes",
}

GLOBAL_FLAGS = [
    Flag("config", kind="string", default=None, help="Location of client config files", show_default='"/root/.dockyard"'),
    Flag("context", "c", help="Ignored (Dockyard has no contexts)", hidden=True),
    Flag("debug", "D", kind="bool", help="Enable debug mode"),
    Flag("host", "H", kind="list", help="Daemon socket to connect to"),
    Flag("log-level", "l", default="info", help='Set the logging level ("debug", "info", "warn", "error", "fatal")'),
    Flag("tls", kind="bool", help="Use TLS; implied by --tlsverify"),
    Flag("tlscacert", default="", help="Trust certs signed only by this CA", show_default='"/root/.dockyard/ca.pem"'),
    Flag("tlscert", default="", help="Path to TLS certificate file", show_default='"/root/.dockyard/cert.pem"'),
    Flag("tlskey", default="", help="Path to TLS key file", show_default='"/root/.dockyard/key.pem"'),
    Flag("tlsverify", kind="bool", help="Use TLS and verify the remote"),
    Flag("version", "v", kind="bool", help="Print version information and quit"),
]


def _aliases(module: str, attr: str) -> list[str]:
    paths = [p for p, m, a, _d, _s in REGISTRY if m == module and a == attr]
    return [f"{PROG} {p}" for p in sorted(paths, key=lambda p: " " not in p)]


def top_help() -> str:
    def rows(section: str) -> list[str]:
        return [f"  {p:<11} {d}" for p, _m, _a, d, s in REGISTRY if s == section]

    fs = FlagSet(GLOBAL_FLAGS)
    from dockyard.cli.command import _help_width

    lines = [f"Usage:  {PROG} [OPTIONS] COMMAND", "",
             "A self-sufficient runtime for containers", "",
             "Common Commands:", *rows("common"), "",
             "Management Commands:", *[f"  {g:<11} {d}" for g, d in GROUPS.items()], "",
             "Commands:", *rows("cmd"), "",
             "Global Options:", fs.usages(_help_width()), "",
             f"Run '{PROG} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def group_help(group: str) -> str:
    subs = [(p.split(" ", 1)[1], d) for p, _m, _a, d, s in REGISTRY if p.startswith(group + " ") and s != "alias"]
    lines = [f"Usage:  {PROG} {group} COMMAND", "", GROUPS[group], "", "Commands:",
             *[f"  {n:<11} {d}" for n, d in sorted(subs)], "",
             f"Run '{PROG} {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def _lookup(path: str) -> tuple[str, str, str] | None:
    for p, m, a, d, _s in REGISTRY:
        if p == path:
            return m, a, d
    return None


def _print_version() -> None:
    from dockyard import __version__

    sys.stdout.write(f"Dockyard version {__version__}, API 1.43\n")


def _usage_error(cmd_usage: str, hint: str, message: str, prefix: bool) -> None:
    head = f"{PROG}: {message}" if prefix else message
    sys.stderr.write(f"{head}\n\n{cmd_usage}\n\n{hint}\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    gfs = FlagSet(GLOBAL_FLAGS, interspersed=False)
    try:
        gopts, rest = gfs.parse(args)
    except HelpRequested:
        sys.stdout.write(top_help())
        return 0
    except FlagError as e:
        sys.stderr.write(f"{e}\n\nUsage:  {PROG} [OPTIONS] COMMAND\n\nRun '{PROG} --help' for more information\n")
        return 125
    if gopts["version"]:
        _print_version()
        return 0
    if not rest:
        sys.stdout.write(top_help())
        return 0
    name = rest[0]
    path = name
    entry = _lookup(name)
    rest = rest[1:]
    if name in GROUPS:
        if not rest or rest[0] in ("--help", "-h", "help"):
            sys.stdout.write(group_help(name))
            return 0
        sub = rest[0]
        path = f"{name} {sub}"
        entry = _lookup(path)
        rest = rest[1:]
        if entry is None:
            sys.stderr.write(f"{PROG}: unknown command: {PROG} {path}\n\nUsage:  {PROG} {name} COMMAND\n\n"
                             f"Run '{PROG} {name} --help' for more information\n")
            return 1
    elif name == "help":
        if rest:
            return main([*rest, "--help"])
        sys.stdout.write(top_help())
        return 0
    if entry is None:
        sys.stderr.write(f"{PROG}: unknown command: {PROG} {path}\n\nRun '{PROG} --help' for more information\n")
        return 1
    module, attr, desc = entry
    mod = __import__(f"dockyard.cli.commands.{module}", fromlist=[attr])
    cmd: Command = getattr(mod, attr)
    cmd.path = path
    cmd.short = desc
    cmd.aliases = _aliases(module, attr)
    try:
        if cmd.raw:
            from dockyard.cli.flags import Options

            opts, pos = Options(), list(rest)
        else:
            opts, pos = cmd.flagset().parse(rest)
    except HelpRequested:
        sys.stdout.write(cmd.help_text())
        return 0
    except FlagError as e:
        _usage_error(cmd.usage_line(), cmd.hint(), str(e), prefix=False)
        return 125
    try:
        cmd.check_args(pos)
    except ArgsError as e:
        _usage_error(cmd.usage_line(), cmd.hint(args_error=True), e.message, prefix=True)
        return 1
    tls = None
    if gopts["tls"] or gopts["tlsverify"] or os.environ.get("DOCKYARD_TLS_VERIFY"):
        certs = os.environ.get("DOCKYARD_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".dockyard")
        tls = {"verify": bool(gopts["tlsverify"] or os.environ.get("DOCKYARD_TLS_VERIFY")),
               "cacert": gopts["tlscacert"] or os.path.join(certs, "ca.pem"),
               "cert": gopts["tlscert"] or os.path.join(certs, "cert.pem"),
               "key": gopts["tlskey"] or os.path.join(certs, "key.pem")}
    ctx = Ctx(gopts["host"] or None, tls, gopts["config"], gopts["debug"])  # type: ignore[arg-type]
    return run_command(ctx, cmd, opts, pos)


def run_command(ctx: Ctx, cmd: Command, opts: object, pos: list[str]) -> int:
    from dockyard.cli.client import APIError, DaemonUnreachable
    from dockyard.cli.http import ProtocolError

    try:
        status = cmd.func(ctx, opts, pos)  # type: ignore[arg-type]
        sys.stdout.flush()
        return int(status or 0)
    except StatusError as e:
        if e.message:
            sys.stderr.write(e.message.rstrip("\n") + "\n")
        return e.status
    except CLIError as e:
        if e.message:
            sys.stderr.write(e.message.rstrip("\n") + "\n")
        return e.status
    except APIError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    except DaemonUnreachable as e:
        sys.stderr.write(f"{e}\n")
        if e.detail and (ctx.debug or e.show):
            sys.stderr.write(f"({e.detail})\n")
        return 1
    except FlagError as e:
        _usage_error(cmd.usage_line(), cmd.hint(), str(e), prefix=False)
        return 125
    except ProtocolError as e:
        sys.stderr.write(f"error during connect: {e}\n")
        return 1
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()
