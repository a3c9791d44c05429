"""Every command answers --help in Docker's layout, and the registry resolves (pure, in-process)."""

from __future__ import annotations

import pytest

from dockyard.cli.main import GROUPS, REGISTRY, main


# `dockyard daemon --help` execs the daemon, which prints its own flags: not testable in-process
@pytest.mark.parametrize("path", [p for p, *_rest in REGISTRY if p != "daemon"])
def test_each_command_has_help(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage:  dockyard {path} ")
    assert "\n\n" in out


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([group]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage:  dockyard {group} COMMAND\n\n{GROUPS[group]}\n\nCommands:\n")


def test_top_level_help_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage:  dockyard [OPTIONS] COMMAND\n") and "Management Commands:" in out
    assert main(["--bogus"]) == 125
    assert capsys.readouterr().err.startswith("unknown flag: --bogus\n")
    assert main(["volume", "frobnicate"]) == 1
    assert capsys.readouterr().err.startswith("dockyard: unknown command: dockyard volume frobnicate\n")
    assert main(["ps", "extra"]) == 1
    assert capsys.readouterr().err == ("dockyard: 'dockyard ps' accepts no arguments\n\nUsage:  dockyard ps [OPTIONS]\n\n"
                                       "Run 'dockyard ps --help' for more information\n")
    assert main(["-v"]) == 0
    assert capsys.readouterr().out.startswith("Dockyard version ")
