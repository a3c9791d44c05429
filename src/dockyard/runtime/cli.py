"""`dockyard-runc`: the command line, compatible with runc's.

    dockyard-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] VERB [options] ARGS

Verbs: spec, create, start, run, state, kill, delete, list, ps, exec, pause, resume, update,
events, features. Each verb's module is imported only when that verb runs; the parser is options.py
(no argparse). Errors print as `time=... level=error msg="..."` on stderr (and in --log), exit 1.
"""

from __future__ import annotations

import os
import sys

from dockyard.runtime import log
from dockyard.runtime.options import INT, LIST, STR, Flag, UsageError, parse

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"

GLOBAL_FLAGS = [
    Flag("root", STR), Flag("log", STR), Flag("log-format", STR, "text"), Flag("debug"),
    Flag("systemd-cgroup"), Flag("criu", STR), Flag("rootless", STR), Flag("help,h"), Flag("version,v"),
]
CREATE_FLAGS = [
    Flag("bundle,b", STR, "."), Flag("console-socket", STR, ""), Flag("pid-file", STR, ""), Flag("no-pivot"),
    Flag("no-new-keyring"), Flag("preserve-fds", INT, 0),
]
RUN_FLAGS = CREATE_FLAGS + [Flag("detach,d"), Flag("keep"), Flag("no-subreaper")]
EXEC_FLAGS = [
    Flag("console-socket", STR, ""), Flag("cwd", STR, ""), Flag("env,e", LIST), Flag("tty,t"), Flag("user,u", STR, ""),
    Flag("additional-gids,g", LIST), Flag("process,p", STR, ""), Flag("detach,d"), Flag("pid-file", STR, ""),
    Flag("process-label", STR, ""), Flag("apparmor", STR, ""), Flag("no-new-privs"), Flag("cap,c", LIST),
    Flag("preserve-fds", INT, 0), Flag("cgroup", LIST), Flag("ignore-paused"),
]
UPDATE_FLAGS = [
    Flag("resources,r", STR, ""), Flag("blkio-weight", INT), Flag("cpu-period", INT), Flag("cpu-quota", INT),
    Flag("cpu-share", INT), Flag("cpu-rt-period", INT), Flag("cpu-rt-runtime", INT), Flag("cpuset-cpus", STR),
    Flag("cpuset-mems", STR), Flag("kernel-memory", STR), Flag("kernel-memory-tcp", STR), Flag("memory", STR),
    Flag("memory-reservation", STR), Flag("memory-swap", STR), Flag("pids-limit", INT), Flag("l3-cache-schema", STR),
    Flag("mem-bw-schema", STR),
]

USAGE = """NAME:
   dockyard-runc - Open Container Initiative runtime (Dockyard)

USAGE:
   dockyard-runc [global options] command [command options] [arguments...]

COMMANDS:
   create   create a container
   delete   delete any resources held by the container often used with detached container
   events   display container events such as OOM notifications, cpu, memory, and IO usage statistics
   exec     execute new process inside the container
   features show the enabled features
   kill     kill sends the specified signal (default: SIGTERM) to the container's init process
   list     lists containers started by dockyard-runc with the given root
   pause    pause suspends all processes inside the container
   ps       ps displays the processes running inside a container
   resume   resumes all processes that have been previously paused
   run      create and run a container
   spec     create a new specification file
   start    executes the user defined process in a created container
   state    output the state of a container
   update   update container resource constraints

GLOBAL OPTIONS:
   --debug             enable debug logging
   --log value         set the log file to write dockyard-runc logs to (default is '/dev/stderr')
   --log-format value  set the log format ('text' (default), or 'json') (default: "text")
   --root value        root directory for storage of container state (default: "/run/dockyard-runc")
   --help, -h          show help
   --version, -v       print the version
"""


def _one_id(args: list[str], verb: str) -> str:
    if len(args) != 1:
        raise UsageError(f'"{verb}" requires exactly 1 argument(s)' if len(args) != 1 else "")
    return args[0]


def _need_id(args: list[str], verb: str) -> str:
    if not args:
        raise UsageError(f'"{verb}" requires a minimum of 1 argument(s)')
    return args[0]


def _create_options(v: dict):
    from dockyard.runtime.create import Options

    o = Options()
    o.bundle = v["bundle"]
    o.pid_file = v["pid_file"]
    o.console_socket = v["console_socket"]
    o.no_pivot = v["no_pivot"] or bool(os.environ.get("DOCKYARD_RUNC_NO_PIVOT"))
    o.no_new_keyring = v["no_new_keyring"]
    o.preserve_fds = v["preserve_fds"]
    if os.environ.get("LISTEN_FDS", "").isdigit():
        o.preserve_fds += int(os.environ["LISTEN_FDS"])
    return o


def _update_resources(v: dict) -> dict:
    from dockyard.runtime.options import parse_size

    if v["resources"]:
        from dockyard.runtime import jsonfast

        if v["resources"] == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(v["resources"], "rb") as f:
                data = f.read()
        r = jsonfast.loads(data)
        if not isinstance(r, dict):
            raise UsageError("resources must be a JSON object")
        return r
    r: dict = {}
    mem: dict = {}
    for key, flag in (("limit", "memory"), ("reservation", "memory_reservation"), ("swap", "memory_swap"),
                      ("kernel", "kernel_memory"), ("kernelTCP", "kernel_memory_tcp")):
        if v[flag]:
            mem[key] = parse_size(v[flag])
    if mem:
        r["memory"] = mem
    cpu: dict = {}
    for key, flag in (("shares", "cpu_share"), ("quota", "cpu_quota"), ("period", "cpu_period"),
                      ("realtimePeriod", "cpu_rt_period"), ("realtimeRuntime", "cpu_rt_runtime"),
                      ("cpus", "cpuset_cpus"), ("mems", "cpuset_mems")):
        if v[flag] not in (None, False, ""):
            cpu[key] = v[flag]
    if cpu:
        r["cpu"] = cpu
    if v["pids_limit"] is not None:
        r["pids"] = {"limit": v["pids_limit"]}
    if v["blkio_weight"] is not None:
        r["blockIO"] = {"weight": v["blkio_weight"]}
    return r


def dispatch(argv: list[str]) -> int:
    g, rest = parse(argv, GLOBAL_FLAGS)
    log.LOG_FILE = g["log"] or ""
    log.LOG_FORMAT = g["log_format"] or "text"
    log.DEBUG = bool(g["debug"])
    if g["version"]:
        sys.stdout.write(f"dockyard-runc version {VERSION}\nspec: {SPEC_VERSION}\n")
        return 0
    if g["help"] or not rest:
        sys.stdout.write(USAGE)
        return 0 if g["help"] else 1
    if g["systemd_cgroup"]:
        raise UsageError("systemd cgroup management is not supported: use the cgroupfs manager")
    from dockyard.runtime.state import DEFAULT_ROOT

    root = os.path.abspath(g["root"] or DEFAULT_ROOT)
    verb, args = rest[0], rest[1:]

    if verb == "run":
        v, pos = parse(args, RUN_FLAGS)
        from dockyard.runtime.run import run

        return run(root, _one_id(pos, verb), _create_options(v), v["detach"], v["keep"])
    if verb == "create":
        v, pos = parse(args, CREATE_FLAGS)
        from dockyard.runtime.create import create

        _c, extra = create(root, _one_id(pos, verb), _create_options(v))
        return 0
    if verb == "start":
        _v, pos = parse(args, [])
        from dockyard.runtime import lifecycle, state

        lifecycle.start(state.load(root, _one_id(pos, verb)))
        return 0
    if verb == "state":
        _v, pos = parse(args, [])
        from dockyard.runtime.queries import state_cmd

        state_cmd(root, _one_id(pos, verb))
        return 0
    if verb == "kill":
        v, pos = parse(args, [Flag("all,a")], stop_at_positional=False)
        from dockyard.runtime import lifecycle, signals, state

        if not 1 <= len(pos) <= 2:
            raise UsageError('"kill" requires a minimum of 1 and a maximum of 2 arguments')
        try:
            sig = signals.parse(pos[1]) if len(pos) == 2 else 15
        except ValueError:
            raise UsageError(f'unknown signal "{pos[1]}"') from None
        lifecycle.kill(state.load(root, pos[0]), sig, v["all"])
        return 0
    if verb == "delete":
        v, pos = parse(args, [Flag("force,f")], stop_at_positional=False)
        from dockyard.runtime import lifecycle

        if not pos:
            raise UsageError('"delete" requires a minimum of 1 argument(s)')
        for cid in pos:
            lifecycle.delete(root, cid, v["force"])
        return 0
    if verb == "list":
        v, pos = parse(args, [Flag("format,f", STR, "table"), Flag("quiet,q")])
        from dockyard.runtime.queries import list_cmd

        list_cmd(root, v["format"], v["quiet"])
        return 0
    if verb == "ps":
        v, pos = parse(args, [Flag("format,f", STR, "table")])
        from dockyard.runtime.queries import ps_cmd

        ps_cmd(root, _need_id(pos, verb), v["format"], pos[1:])
        return 0
    if verb == "exec":
        v, pos = parse(args, EXEC_FLAGS)
        from dockyard.runtime.exec_ import ExecOptions, exec_process

        cid = _need_id(pos, verb)
        o = ExecOptions()
        o.process = v["process"]
        o.args = pos[1:]
        o.tty = v["tty"]
        o.console_socket = v["console_socket"]
        o.detach = v["detach"]
        o.pid_file = v["pid_file"]
        o.cwd = v["cwd"]
        o.env = v["env"]
        o.user = v["user"]
        o.additional_gids = v["additional_gids"]
        o.caps = v["cap"]
        o.no_new_privs = v["no_new_privs"]
        o.preserve_fds = v["preserve_fds"]
        o.ignore_paused = v["ignore_paused"]
        if v["cgroup"]:
            raise UsageError("exec --cgroup (a sub-cgroup for the process) is not supported")
        if v["apparmor"]:
            o.extra["apparmorProfile"] = v["apparmor"]
        if v["process_label"]:
            o.extra["selinuxLabel"] = v["process_label"]
        if not o.process and not o.args:
            raise UsageError("exec args cannot be empty")
        return exec_process(root, cid, o)
    if verb in ("pause", "resume"):
        _v, pos = parse(args, [])
        from dockyard.runtime import lifecycle, state

        c = state.load(root, _one_id(pos, verb))
        (lifecycle.pause if verb == "pause" else lifecycle.resume)(c)
        return 0
    if verb == "update":
        v, pos = parse(args, UPDATE_FLAGS)
        from dockyard.runtime.queries import update_cmd

        update_cmd(root, _one_id(pos, verb), _update_resources(v))
        return 0
    if verb == "events":
        v, pos = parse(args, [Flag("stats"), Flag("interval", STR, "5s")])
        from dockyard.runtime.queries import events_cmd

        events_cmd(root, _one_id(pos, verb), v["stats"], v["interval"])
        return 0
    if verb == "spec":
        v, pos = parse(args, [Flag("bundle,b", STR, "."), Flag("rootless")])
        from dockyard.runtime.queries import spec_cmd

        spec_cmd(v["bundle"], v["rootless"])
        return 0
    if verb == "features":
        _v, _pos = parse(args, [])
        from dockyard.runtime import jsonfast
        from dockyard.runtime.defaults import features

        sys.stdout.write(jsonfast.dumps_pretty(features(), "    ") + "\n")
        return 0
    if verb in ("checkpoint", "restore"):
        raise UsageError(f"{verb} is not supported by dockyard-runc")
    raise UsageError(f"No help topic for '{verb}'")


def main(argv: list[str] | None = None) -> int:
    """The program. Called without `argv` (as the launcher does) it ends the process itself with
    os._exit once output is flushed: interpreter teardown would add milliseconds to every call."""
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    return code


def _main(argv: list[str]) -> int:
    import gc

    # a short-lived process that allocates little: no collections, and fewer copy-on-write page
    # faults in the children it forks
    gc.disable()
    try:
        return dispatch(argv)
    except UsageError as e:
        log.error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the runtime's errors all end up here, in runc's format
        if log.DEBUG:
            import traceback

            log.debug(traceback.format_exc())
        log.error(_describe(e))
        return 1


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or e.__class__.__name__
