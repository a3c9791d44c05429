"""The exec helper shipped inside dockyard/runtime/exechelper.py is exactly what its source builds
to: the embedded bytes are reproducible from exechelper.c with the command in its header."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest

from dockyard.runtime import exechelper

SRC = os.path.join(os.path.dirname(exechelper.__file__), "exechelper.c")
BUILD = ["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie",
         "-fno-asynchronous-unwind-tables", "-Wl,--build-id=none", "-Wl,-n", "-s"]  # fmt: skip


@pytest.mark.skipif(os.uname().machine != "x86_64" or not shutil.which("gcc"), reason="x86_64 helper, needs gcc")
def test_embedded_helper_is_built_from_its_source(tmp_path):
    with open(SRC) as f:
        header = f.read().split("*/", 1)[0]
    assert " ".join(BUILD[:3]) in " ".join(header.split())  # the documented command is the one used here
    out = tmp_path / "exechelper"
    subprocess.run(["gcc", *BUILD, "-o", str(out), SRC], check=True)
    assert base64.b64decode(exechelper._X86_64) == out.read_bytes()
