"""OCI hooks: run each hook with the container state as JSON on its stdin, with its timeout.

Where they run (runtime-spec "Lifecycle"): prestart and createRuntime by the runtime in the
runtime's namespaces once the container's namespaces exist; createContainer by the init in the
container's namespaces before pivot_root; startContainer by the init just before the user's
program; poststart by `start` after it; poststop by `delete`. A failing hook of the first four
fails the operation; poststart and poststop failures are warnings, as the spec says.
"""

from __future__ import annotations

from dockyard.runtime import jsonfast


class HookError(Exception):
    pass


def run(hooks: list[dict] | None, state: dict, kind: str) -> None:
    if not hooks:
        return
    import subprocess

    data = jsonfast.dumps(state).encode()
    for h in hooks:
        path = h.get("path", "")
        args = h.get("args") or [path]
        env = {}
        for e in h.get("env") or []:
            k, _, v = e.partition("=")
            env[k] = v
        timeout = h.get("timeout")
        try:
            r = subprocess.run(args, executable=path, input=data, capture_output=True, env=env,
                               timeout=timeout if timeout and timeout > 0 else None, close_fds=True)
        except subprocess.TimeoutExpired:
            raise HookError(f"{kind} hook {path}: timed out after {timeout}s") from None
        except OSError as e:
            raise HookError(f"{kind} hook {path}: {e.strerror}") from None
        if r.returncode != 0:
            out = (r.stderr or r.stdout).decode(errors="replace").strip()
            status = f"exit status {r.returncode}" if r.returncode > 0 else f"signal: {-r.returncode}"
            raise HookError(f"error running {kind} hook #{hooks.index(h)}: {status}" + (f", stdout/stderr: {out}" if out else ""))


def run_warn(hooks: list[dict] | None, state: dict, kind: str, warn) -> None:
    """Poststart/poststop: run every hook; failures are passed to `warn` and do not stop the rest."""
    for h in hooks or []:
        try:
            run([h], state, kind)
        except HookError as e:
            warn(str(e))
