"""The classic builder: runs a parsed Dockerfile against the daemon's own machinery.

    b = Builder(daemon, context, options, emit)
    image_id = await b.build(dockerfile_text)

`emit(msg)` receives Docker's build messages (`{"stream": ...}`, `{"aux": {"ID": ...}}`, pull
progress) and may be called from worker threads. Each step is one image: RUN runs a real
container (daemon/create.py, lifecycle.py) and commits its layer (ImageService.commit); COPY,
ADD and WORKDIR write into a temporary rw layer over the parent image and commit it; the other
instructions make an image with the parent's layers and a new config (ImageService.create_child).
Intermediate images stay as dangling parents, as Docker's classic builder leaves them, and are
the build cache (build/cache.py). Containers of failed steps are removed too (unless --rm=false),
temporary layers always. Blocking work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import codecs
import copy
import io
import json
import logging
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.build import instructions as ins
from dockyard.build import parser, remote, shlex
from dockyard.build.cache import CacheIndex
from dockyard.build.context import Context, content_hash, is_archive, pack_copy, resolve_sources
from dockyard.daemon import archive, create, lifecycle, logs, remove, signals, userdb
from dockyard.errors import DockyardError, InvalidParameter, NotFound
from dockyard.image import reference
from dockyard.image.config import empty_container_config
from dockyard.util import new_id

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon

log = logging.getLogger("dockyard.build")

PREDEFINED_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}  # fmt: skip
DEFAULT_SHELL = ["/bin/sh", "-c"]
BUILDKIT_ONLY = "the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"  # noqa: E501


class StepFailed(DockyardError):
    """A RUN that exited non-zero; `code` goes into errorDetail."""

    status = 500

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = field(default_factory=dict)
    no_cache: bool = False
    quiet: bool = False
    rm: bool = True
    force_rm: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    pull: bool = False
    platform: str = ""
    network_mode: str = "default"
    auth_configs: dict[str, dict] = field(default_factory=dict)
    host_config: dict = field(default_factory=dict)  # resources, ulimits, extra hosts of RUN containers


@dataclass
class Stage:
    index: int
    name: str
    instructions: list[parser.Instruction]
    image: str | None = None
    config: dict = field(default_factory=dict)
    author: str = ""
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


class Builder:
    def __init__(self, d: Daemon, ctx: Context, opts: BuildOptions, emit: Callable[[dict], None]) -> None:
        self.d, self.ctx, self.opts, self.emit = d, ctx, opts, emit
        self.cache = CacheIndex(d.data_root)
        self.escape = "\\"
        self.meta: dict[str, str | None] = {}
        self.used_args: set[str] = set()
        self.stages: list[Stage] = []
        self.step = 0
        self.total = 0
        self.containers: list[str] = []
        self.in_trigger = False

    # --- output -------------------------------------------------------------------------------------
    def out(self, text: str) -> None:
        if not self.opts.quiet:
            self.emit({"stream": text})

    # --- the build ----------------------------------------------------------------------------------
    async def build(self, text: str) -> str:
        df = parser.parse(text)
        self.escape = df.escape
        insts = list(df.instructions)
        if not insts:
            raise InvalidParameter(f"the Dockerfile ({self.opts.dockerfile}) cannot be empty")
        # --label: one LABEL step per label at the end, as dockerd adds them
        label_steps = []
        for k, v in sorted(self.opts.labels.items()):
            inst = parser.parse_instruction(insts[-1].line if insts else 1, f"LABEL {_goq(k)}={_goq(v)}")
            inst.original = f"LABEL {k}={v}"
            label_steps.append(inst)
        insts += label_steps
        i = 0
        while i < len(insts) and insts[i].name == "arg":
            self._meta_arg(insts[i])
            i += 1
        if i >= len(insts) or insts[i].name != "from":
            raise InvalidParameter("no build stage in current context")
        for inst in insts[i:]:
            if inst.name == "from":
                words = parser.parse_words(inst.rest)
                name = words[2].lower() if len(words) == 3 else ""
                self.stages.append(Stage(len(self.stages), name, [inst]))
            else:
                self.stages[-1].instructions.append(inst)
        stages = self.stages
        if self.opts.target:
            t = self.opts.target.lower()
            idx = next((s.index for s in stages if s.name == t), None)
            if idx is None:
                raise InvalidParameter(f"failed to reach build target {self.opts.target} in Dockerfile")
            stages = stages[: idx + 1]
            if label_steps and stages[-1] is not self.stages[-1]:  # they belong to the stage built last
                del self.stages[-1].instructions[-len(label_steps):]
                stages[-1].instructions += label_steps
        self.total = sum(len(s.instructions) for s in stages)
        try:
            for stage in stages:
                for inst in stage.instructions:
                    self.step += 1
                    self.out(f"Step {self.step}/{self.total} : {inst.original}\n")
                    await self.dispatch(stage, inst)
        except BaseException:
            await self._remove_containers()
            raise
        final = stages[-1].image
        if final is None:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        unused = sorted(k for k in self.opts.build_args if k not in self.used_args and k not in PREDEFINED_ARGS)
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        self.emit({"aux": {"ID": final}})
        if self.opts.quiet:
            self.emit({"stream": final + "\n"})
        self.out(f"Successfully built {_short(final)}\n")
        for tag in self.opts.tags:
            ref = reference.parse_normalized(tag)
            await asyncio.to_thread(self.d.images.tag_ref, final, ref)
            self.d.events.publish("image", "tag", final, {"name": ref.familiar()})
            self.out(f"Successfully tagged {ref.familiar()}\n")
        return final

    def _meta_arg(self, inst: parser.Instruction) -> None:
        name, has, default = inst.rest.partition("=")
        env = {k: v for k, v in self.meta.items() if v is not None}
        value: str | None = shlex.process_word(default, env, self.escape) if has else None
        if name in self.opts.build_args and self.opts.build_args[name] is not None:
            value = self.opts.build_args[name]
            self.used_args.add(name)
        self.meta[name] = value

    async def _remove_containers(self) -> None:
        if not (self.opts.rm or self.opts.force_rm):
            return
        for cid in self.containers:
            c = self.d.store.find(cid)
            if c is None:
                continue
            try:
                await remove.remove(self.d, c, force=True, volumes=True)
            except Exception as e:  # noqa: BLE001 - keep removing the others
                log.warning("removing build container %s: %s", cid[:12], e)
        self.containers.clear()

    # --- environment --------------------------------------------------------------------------------
    def _arg_values(self, stage: Stage) -> dict[str, str]:
        return {k: v for k, v in stage.args.items() if v is not None}

    def _env(self, stage: Stage) -> dict[str, str]:
        env = self._arg_values(stage)
        env.update(ins.env_map(stage.config.get("Env")))
        return env

    def _word(self, stage: Stage, w: str) -> str:
        return shlex.process_word(w, self._env(stage), self.escape)

    # --- dispatch -----------------------------------------------------------------------------------
    async def dispatch(self, stage: Stage, inst: parser.Instruction) -> None:
        n = inst.name
        allowed = {"from": {"platform"}, "copy": {"from", "chown", "chmod", "link"},
                   "add": {"chown", "chmod", "link", "checksum", "keep-git-dir"},
                   "healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
                   "run": {"mount", "network", "security"}}.get(n, set())  # fmt: skip
        for f in inst.flags:
            if f not in allowed:
                raise InvalidParameter(f"Dockerfile parse error line {inst.line}: Unknown flag: {f}")
        for f in ("chmod", "link", "mount", "network", "security", "checksum", "keep-git-dir"):
            if f in inst.flags:
                raise InvalidParameter(BUILDKIT_ONLY.format(f))
        handler = getattr(self, f"do_{n}")
        await handler(stage, inst)

    async def do_from(self, stage: Stage, inst: parser.Instruction) -> None:
        env = {k: v for k, v in self.meta.items() if v is not None}
        words = parser.parse_words(inst.rest)
        name = shlex.process_word(words[0], env, self.escape)
        platform = shlex.process_word(inst.flags.get("platform", ""), env, self.escape) or self.opts.platform
        ins.check_platform(platform)
        if not name:
            raise InvalidParameter("base name (${...}) should not be blank")
        stage.args = {}
        if name.lower() == "scratch":
            stage.image, stage.config = None, empty_container_config()
            self.out(" ---> \n")  # dockerd prints the (empty) image id of scratch too
            return
        by_name = next((s for s in self.stages[: stage.index] if s.name and s.name == name.lower()), None)
        if by_name is not None:
            image_id = by_name.image
            img = await self.d.image_get(image_id) if image_id else None
        else:
            img = await self._image(name)
            image_id = img.id
        stage.image = image_id
        stage.config = copy.deepcopy(img.container_config) if img is not None else empty_container_config()
        triggers = list(stage.config.get("OnBuild") or [])
        stage.config["OnBuild"] = None
        if triggers:
            # the triggers run inside the FROM step: one ` ---> <id>` line after all of them
            self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            self.in_trigger = True
            try:
                for t in triggers:
                    for sub in parser.parse(t).instructions:
                        if sub.name in ("onbuild", "from", "maintainer"):
                            raise InvalidParameter(f"{sub.name.upper()} isn't allowed as an ONBUILD trigger")
                        await self.dispatch(stage, sub)
            finally:
                self.in_trigger = False
        self.out(f" ---> {_short(stage.image) if stage.image else ''}\n")

    async def _image(self, name: str) -> Any:
        svc = self.d.images
        if not self.opts.pull:
            try:
                return await asyncio.to_thread(svc.get, name)
            except NotFound:
                pass
        ref = reference.parse_normalized(name)
        auth = self.opts.auth_configs.get(ref.domain) or (
            self.opts.auth_configs.get("https://index.docker.io/v1/") if ref.domain == "docker.io" else None)
        await svc.pull(str(ref), auth or None, self.emit, None)
        return await asyncio.to_thread(svc.get, str(ref))

    # --- metadata steps -----------------------------------------------------------------------------
    async def _nop(self, stage: Stage, comment: str) -> None:
        """Commit a config-only step: `<shell> #(nop)  <comment>`, or take it from the cache."""
        cfg = copy.deepcopy(stage.config)
        cfg["Image"] = stage.image or ""
        run_cfg = copy.deepcopy(cfg)
        run_cfg["Cmd"] = stage.shell + ["#(nop) ", comment]
        if await self._probe(stage, run_cfg):
            return
        image_id = await asyncio.to_thread(self.d.images.create_child, stage.image, cfg, " ".join(run_cfg["Cmd"]),
                                           run_cfg, stage.author)  # fmt: skip
        await self._committed(stage, run_cfg, image_id)

    async def _probe(self, stage: Stage, run_cfg: dict) -> bool:
        if self.opts.no_cache:
            return False
        key = self.cache.key(stage.image, run_cfg)
        hit = await asyncio.to_thread(self.cache.lookup, key)
        if hit is None or not await asyncio.to_thread(self.d.images.exists, hit):
            return False
        self.out(" ---> Using cache\n")
        if not self.in_trigger:
            self.out(f" ---> {_short(hit)}\n")
        stage.image = hit
        return True

    async def _committed(self, stage: Stage, run_cfg: dict, image_id: str) -> None:
        await asyncio.to_thread(self.cache.store, self.cache.key(stage.image, run_cfg), image_id)
        stage.image = image_id
        if not self.in_trigger:
            self.out(f" ---> {_short(image_id)}\n")

    async def do_env(self, stage: Stage, inst: parser.Instruction) -> None:
        env = self._env(stage)
        parts = []
        for k, v in parser.parse_kv(inst, "ENV"):
            key = shlex.process_word(k, env, self.escape)
            value = shlex.process_word(v, env, self.escape)
            stage.config["Env"] = ins.set_env(stage.config.get("Env"), key, value)
            parts.append(f"{key}={value}")
        await self._nop(stage, "ENV " + " ".join(parts))

    async def do_label(self, stage: Stage, inst: parser.Instruction) -> None:
        env = self._env(stage)
        labels = dict(stage.config.get("Labels") or {})
        parts = []
        for k, v in parser.parse_kv(inst, "LABEL"):
            key = shlex.process_word(k, env, self.escape)
            value = shlex.process_word(v, env, self.escape)
            labels[key] = value
            parts.append(f"{key}={value}")
        stage.config["Labels"] = labels
        await self._nop(stage, "LABEL " + " ".join(parts))

    async def do_maintainer(self, stage: Stage, inst: parser.Instruction) -> None:
        stage.author = inst.rest
        await self._nop(stage, "MAINTAINER " + inst.rest)

    async def do_expose(self, stage: Stage, inst: parser.Instruction) -> None:
        ports = shlex.process_words(inst.rest, self._env(stage), self.escape)
        exposed = dict(stage.config.get("ExposedPorts") or {})
        exposed.update(ins.expose_ports(ports))
        stage.config["ExposedPorts"] = exposed
        await self._nop(stage, "EXPOSE " + " ".join(sorted(ports)))

    async def do_volume(self, stage: Stage, inst: parser.Instruction) -> None:
        env = self._env(stage)
        if inst.json is not None:
            vols = [shlex.process_word(v, env, self.escape) for v in inst.json]
        else:
            vols = shlex.process_words(inst.rest, env, self.escape)
        volumes = dict(stage.config.get("Volumes") or {})
        for v in vols:
            if not v.strip():
                raise InvalidParameter("VOLUME specified can not be an empty string")
            volumes[v] = {}
        stage.config["Volumes"] = volumes
        await self._nop(stage, "VOLUME [" + " ".join(vols) + "]")

    async def do_user(self, stage: Stage, inst: parser.Instruction) -> None:
        stage.config["User"] = self._word(stage, inst.rest)
        await self._nop(stage, "USER " + stage.config["User"])

    async def do_stopsignal(self, stage: Stage, inst: parser.Instruction) -> None:
        sig = self._word(stage, inst.rest)
        signals.parse(sig)
        stage.config["StopSignal"] = sig
        await self._nop(stage, "STOPSIGNAL " + sig)

    def _command(self, stage: Stage, inst: parser.Instruction) -> list[str]:
        return list(inst.json) if inst.json is not None else stage.shell + [inst.rest]

    async def do_cmd(self, stage: Stage, inst: parser.Instruction) -> None:
        stage.config["Cmd"] = self._command(stage, inst)
        stage.cmd_set = True
        await self._nop(stage, "CMD " + ins.go_quote_list(stage.config["Cmd"]))

    async def do_entrypoint(self, stage: Stage, inst: parser.Instruction) -> None:
        if inst.json is None and not inst.rest:
            stage.config["Entrypoint"] = None
        else:
            stage.config["Entrypoint"] = self._command(stage, inst)
        if not stage.cmd_set:
            stage.config["Cmd"] = None
        await self._nop(stage, "ENTRYPOINT " + ins.go_quote_list(stage.config["Entrypoint"]))

    async def do_shell(self, stage: Stage, inst: parser.Instruction) -> None:
        if not inst.json:
            raise inst.error("SHELL requires the arguments to be in JSON form")
        stage.config["Shell"] = list(inst.json)
        await self._nop(stage, "SHELL [" + " ".join(inst.json) + "]")  # Go's %v of a []string

    async def do_healthcheck(self, stage: Stage, inst: parser.Instruction) -> None:
        hc = ins.healthcheck(inst)
        stage.config["Healthcheck"] = hc
        await self._nop(stage, ins.healthcheck_comment(hc))

    async def do_onbuild(self, stage: Stage, inst: parser.Instruction) -> None:
        trig = inst.rest.strip()
        stage.config["OnBuild"] = list(stage.config.get("OnBuild") or []) + [trig]
        await self._nop(stage, "ONBUILD " + trig)

    async def do_arg(self, stage: Stage, inst: parser.Instruction) -> None:
        name, has, default = inst.rest.partition("=")
        value: str | None = self._word(stage, default) if has else None
        if not has and name in self.meta:
            value = self.meta[name]
        if name in self.opts.build_args and self.opts.build_args[name] is not None:
            value = self.opts.build_args[name]
        self.used_args.add(name)
        stage.args[name] = value
        await self._nop(stage, "ARG " + (f"{name}={self._word(stage, default)}" if has else name))

    # --- RUN ----------------------------------------------------------------------------------------
    def _build_arg_env(self, stage: Stage) -> tuple[list[str], list[str]]:
        """(args that change the cache key and history: declared ones not shadowed by ENV,
        sorted; proxy args passed with --build-arg, for the environment only)."""
        env_keys = set(ins.env_map(stage.config.get("Env")))
        declared = sorted(f"{k}={v}" for k, v in stage.args.items() if v is not None and k not in env_keys)
        proxies = sorted(f"{k}={v}" for k, v in self.opts.build_args.items()
                         if k in PREDEFINED_ARGS and k not in stage.args and v is not None)  # fmt: skip
        return declared, proxies

    async def do_run(self, stage: Stage, inst: parser.Instruction) -> None:
        if stage.image is None:
            raise InvalidParameter("Please provide a source image with `from` prior to run")
        cmd = self._command(stage, inst)
        declared, proxies = self._build_arg_env(stage)
        # dockerd prefixes `|N K=V ...` (N counting the declared args only) whenever any build arg
        # reaches the environment, so a proxy arg alone gives `|0 /bin/sh -c ...`
        saved = ([f"|{len(declared)}", *declared] if declared or proxies else []) + cmd
        cfg = copy.deepcopy(stage.config)
        cfg["Image"] = stage.image
        run_cfg = copy.deepcopy(cfg)
        run_cfg["Cmd"] = saved
        if await self._probe(stage, run_cfg):
            return
        body = copy.deepcopy(stage.config)
        body.update({"Image": stage.image, "Cmd": cmd, "Entrypoint": [],
                     "Env": list(stage.config.get("Env") or []) + declared + proxies,
                     "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
                     "Healthcheck": {"Test": ["NONE"]},
                     "HostConfig": {**self.opts.host_config, "NetworkMode": self.opts.network_mode,
                                    "LogConfig": {"Type": "json-file", "Config": {}}}})  # fmt: skip
        body.pop("Shell", None)
        body.pop("OnBuild", None)
        cid, _ = await create.create(self.d, None, body)
        self.containers.append(cid)
        c = self.d.store.get(cid)
        self.out(f" ---> Running in {cid[:12]}\n")
        await lifecycle.start(self.d, c)
        if c.log_path:  # the output, as it comes (json-file log, whatever the daemon's default driver)
            dec = codecs.getincrementaldecoder("utf-8")("replace")
            async for e in logs.stream(c.log_path, logs.LogOptions(follow=True), lambda: c.state.running):
                text = dec.decode(e.data)
                if text:
                    self.out(text)
            tail = dec.decode(b"", final=True)
            if tail:
                self.out(tail)
        code = await lifecycle.wait(c, "not-running")
        if code != 0:
            raise StepFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code)
        image_id = await asyncio.to_thread(self.d.images.commit, cid, stage.image, None, cfg, None, stage.author, "",
                                           run_cfg)  # fmt: skip
        if self.opts.rm or self.opts.force_rm:
            self.out(f"Removing intermediate container {cid[:12]}\n")
            await remove.remove(self.d, c, force=True, volumes=True)
            self.containers.remove(cid)
        await self._committed(stage, run_cfg, image_id)

    # --- COPY, ADD, WORKDIR: a layer written by the daemon ------------------------------------------
    async def _with_layer(self, stage: Stage, work: Callable[[Any, str], None], run_cfg: dict, cfg: dict) -> None:
        """Run `work(root, rootfs_path)` in a worker thread on a temporary rw layer over the stage's
        image, then commit that layer as the step's image."""
        tmp = new_id()
        img = await self.d.image_get(stage.image) if stage.image else None
        layers = self.d.layers
        await asyncio.to_thread(layers.create_rw, tmp, img.top_layer if img else None)
        try:
            rootfs = await asyncio.to_thread(layers.mount, tmp)
            try:
                def run() -> None:
                    root = archive.open_root(rootfs, None, self.d.id_mapping)
                    try:
                        work(root, rootfs)
                    finally:
                        root.close()

                await asyncio.to_thread(run)
            finally:
                await asyncio.to_thread(layers.unmount, tmp)
            image_id = await asyncio.to_thread(self.d.images.commit, tmp, stage.image, None, cfg, None, stage.author,
                                               "", run_cfg)  # fmt: skip
        finally:
            await asyncio.to_thread(layers.remove_rw, tmp)
        await self._committed(stage, run_cfg, image_id)

    async def do_workdir(self, stage: Stage, inst: parser.Instruction) -> None:
        path = self._word(stage, inst.rest)
        if not path.startswith("/"):
            path = posixpath.join(stage.config.get("WorkingDir") or "/", path)
        path = posixpath.normpath(path)
        stage.config["WorkingDir"] = path
        cfg = copy.deepcopy(stage.config)
        cfg["Image"] = stage.image or ""
        run_cfg = copy.deepcopy(cfg)
        run_cfg["Cmd"] = stage.shell + ["#(nop) WORKDIR " + path]
        if await self._probe(stage, run_cfg):
            return

        def work(root: Any, _rootfs: str) -> None:
            try:
                archive.stat_path(root, path, "")
                return
            except NotFound:
                pass
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                ti = tarfile.TarInfo(path.lstrip("/"))
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            buf.seek(0)
            archive.extract(root, "/", buf, False, True, "")

        await self._with_layer(stage, work, run_cfg, cfg)

    async def do_copy(self, stage: Stage, inst: parser.Instruction) -> None:
        await self._copy(stage, inst, "COPY")

    async def do_add(self, stage: Stage, inst: parser.Instruction) -> None:
        await self._copy(stage, inst, "ADD")

    async def _copy(self, stage: Stage, inst: parser.Instruction, what: str) -> None:
        env = self._env(stage)
        raw = inst.json if inst.json is not None else parser.parse_words(inst.rest)
        words = [shlex.process_word(w, env, self.escape) for w in raw]
        srcs, dest = words[:-1], words[-1]
        shown = dest  # history shows the destination as written (after substitution)
        if len(srcs) > 1 and not dest.endswith("/"):
            raise InvalidParameter(f"When using {what} with more than one source file, the destination must be a "
                                   "directory and end with a /")  # fmt: skip
        for s in srcs:
            if what == "ADD" and (s.startswith("git@") or s.endswith(".git") and remote.is_url(s)):
                raise InvalidParameter("ADD from a git repository is not supported by Dockyard's builder")
            if what == "COPY" and remote.is_url(s):
                raise InvalidParameter("source can't be a URL for COPY")
        wd = stage.config.get("WorkingDir") or "/"
        if not dest.startswith("/"):
            trailing = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
            dest = posixpath.normpath(posixpath.join(wd, dest))
            if trailing and dest != "/":
                dest += "/"
        chown = self._word(stage, inst.flags["chown"]) if "chown" in inst.flags else ""
        src_ref = inst.flags.get("from")
        src_layer: tuple[str, str] | None = None  # (temporary rw id, mounted rootfs) of --from
        dl_dir: str | None = None
        try:
            if src_ref is not None:
                src_root, src_layer = await self._source_root(stage, self._word(stage, src_ref))
                where = what
            else:
                src_root, where = self.ctx.root, f"{what} context"
            paths: list[str] = []
            downloaded: set[str] = set()  # ADD <url>: copied as files, never extracted
            for s in srcs:
                if what == "ADD" and remote.is_url(s):
                    if dl_dir is None:
                        dl_dir = await asyncio.to_thread(tempfile.mkdtemp, "", "add-", os.path.dirname(self.ctx.root))
                    sub = await asyncio.to_thread(tempfile.mkdtemp, "", "", dl_dir)
                    path = await asyncio.to_thread(remote.download, s, sub)
                    downloaded.add(path)
                    paths.append(path)
                    continue
                paths += await asyncio.to_thread(resolve_sources, src_root, s, where)
            digest = await asyncio.to_thread(content_hash, paths)
            cfg = copy.deepcopy(stage.config)
            cfg["Image"] = stage.image or ""
            run_cfg = copy.deepcopy(cfg)
            # dockerd writes no space between the --chown option and the hash; kept as it is
            chown_text = f"--chown={chown}" if chown else ""
            run_cfg["Cmd"] = stage.shell + [f"#(nop) {what} {chown_text}{digest} in {shown} "]
            if await self._probe(stage, run_cfg):
                return
            multi = len(paths) > 1 or dest.endswith("/")
            spool = os.path.dirname(self.ctx.root)  # the data root's builder/tmp, not a tmpfs

            def work(root: Any, rootfs: str) -> None:
                owner = _owner(rootfs, chown) if chown else None
                try:
                    _info, st, _ = archive.stat_path(root, dest, "")
                    exists_dir = stat.S_ISDIR(st.st_mode) or os.path.isdir(
                        os.path.join(rootfs, dest.lstrip("/")))
                    exists = True
                except NotFound:
                    exists_dir = exists = False
                into_dir = multi or exists_dir
                for p in paths:
                    if (what == "ADD" and p not in downloaded and os.path.isfile(p) and not os.path.islink(p)
                            and is_archive(p)):  # fmt: skip
                        with tempfile.TemporaryFile(dir=spool) as t:
                            pack_copy([], dest, True, owner, t, make_dest_dir=not exists)
                            t.seek(0)
                            archive.extract(root, "/", t, False, True, "")
                        with open(p, "rb") as f:
                            archive.extract(root, dest, f, False, True, "")
                        exists = exists_dir = True
                        continue
                    is_dir = os.path.isdir(p) and not os.path.islink(p)
                    with tempfile.TemporaryFile(dir=spool) as t:
                        pack_copy([p], dest, into_dir, owner, t,
                                  make_dest_dir=(is_dir or into_dir) and not exists)  # fmt: skip
                        t.seek(0)
                        archive.extract(root, "/", t, False, True, "")
                    if is_dir or into_dir:
                        exists = True

            await self._with_layer(stage, work, run_cfg, cfg)
        finally:
            if dl_dir is not None:
                await asyncio.to_thread(shutil.rmtree, dl_dir, True)
            if src_layer is not None:
                await asyncio.to_thread(self.d.layers.unmount, src_layer[0])
                await asyncio.to_thread(self.d.layers.remove_rw, src_layer[0])

    async def _source_root(self, stage: Stage, ref: str) -> tuple[str, tuple[str, str]]:
        """Mount the rootfs of a previous stage (by name or index) or of an image, for --from."""
        image_id: str | None
        earlier = self.stages[: stage.index]
        named = next((s for s in earlier if s.name and s.name == ref.lower()), None)
        if named is not None:
            image_id = named.image
        elif ref.isdigit():
            if int(ref) >= stage.index:
                raise InvalidParameter(f"invalid from flag value {ref}: refers to current or future build stage")
            image_id = earlier[int(ref)].image
        else:
            image_id = (await self._image(ref)).id
        img = await self.d.image_get(image_id) if image_id else None
        tmp = new_id()
        await asyncio.to_thread(self.d.layers.create_rw, tmp, img.top_layer if img else None)
        try:
            rootfs = await asyncio.to_thread(self.d.layers.mount, tmp)
        except BaseException:
            await asyncio.to_thread(self.d.layers.remove_rw, tmp)
            raise
        return rootfs, (tmp, rootfs)


def _owner(rootfs: str, spec: str) -> tuple[int, int]:
    """--chown=user[:group]: numbers as given, names from the image's /etc/passwd and /etc/group;
    a user without a group gets the same number as gid, as Docker does (and its messages)."""
    user, _, group = spec.partition(":")

    def lookup(name: str, rel: str, what: str) -> int:
        try:
            text = userdb.read_in_root(rootfs, rel)
        except (OSError, DockyardError):
            text = ""
        for line in text.splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[0] == name and f[2].isdigit():
                return int(f[2])
        kind = "uid for user" if what == "user" else "gid for group"
        raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: can't find {kind} {name}: "
                               f"no such {what}: {name}")  # fmt: skip

    uid = int(user) if user.isdigit() else lookup(user, "etc/passwd", "user")
    if not group:
        return uid, uid
    return uid, int(group) if group.isdigit() else lookup(group, "etc/group", "group")


def _goq(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)
