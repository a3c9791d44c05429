"""The Docker-style flag parser: syntax, conversions, error texts and --help layout (pure)."""

from __future__ import annotations

import pytest

from dockyard.cli.flags import (
    Flag,
    FlagError,
    FlagSet,
    HelpRequested,
    format_go_duration,
    parse_go_duration,
    parse_ram_size,
)


def fs(interspersed: bool = True) -> FlagSet:
    return FlagSet([
        Flag("interactive", "i", "bool"),
        Flag("tty", "t", "bool"),
        Flag("detach", "d", "bool"),
        Flag("env", "e", "list"),
        Flag("publish", "p", "list"),
        Flag("name"),
        Flag("last", "n", "int", default=-1),
        Flag("memory", "m", "bytes"),
        Flag("memory-swap", kind="swapbytes"),
        Flag("cpus", kind="decimal"),
        Flag("interval", kind="duration"),
        Flag("opt", "o", "map"),
    ], interspersed)


def test_short_clusters_and_values() -> None:
    opts, args = fs().parse(["-it", "-p8080:80", "-e=A=1", "-e", "B=2", "--name=x", "img"])
    assert opts["interactive"] and opts["tty"] and not opts["detach"]
    assert opts["publish"] == ["8080:80"]
    assert opts["env"] == ["A=1", "B=2"]
    assert opts["name"] == "x"
    assert args == ["img"]
    assert opts.changed == {"interactive", "tty", "publish", "env", "name"}


def test_cluster_with_trailing_valued_flag() -> None:
    opts, _ = fs().parse(["-itp", "80"])
    assert opts["tty"] and opts["publish"] == ["80"]


def test_long_forms_bool_values_and_defaults() -> None:
    opts, _ = fs().parse(["--detach=false", "--tty", "--name", "n"])
    assert opts["detach"] is False and opts["tty"] is True and opts["last"] == -1
    assert "detach" in opts.changed


def test_not_interspersed_stops_at_first_argument() -> None:
    opts, args = fs(interspersed=False).parse(["-d", "busybox", "sh", "-c", "echo -t"])
    assert opts["detach"] and not opts["tty"]
    assert args == ["busybox", "sh", "-c", "echo -t"]


def test_interspersed_and_double_dash() -> None:
    opts, args = fs().parse(["a", "-d", "b", "--", "-t"])
    assert opts["detach"] and not opts["tty"]
    assert args == ["a", "b", "-t"]


def test_single_dash_is_an_argument() -> None:
    _opts, args = fs().parse(["-", "x"])
    assert args == ["-", "x"]


@pytest.mark.parametrize("argv,message", [
    (["--foo"], "unknown flag: --foo"),
    (["-z"], "unknown shorthand flag: 'z' in -z"),
    (["-iz"], "unknown shorthand flag: 'z' in -z"),
    (["--name"], "flag needs an argument: --name"),
    (["-n"], "flag needs an argument: 'n' in -n"),
    (["-n", "x"], 'invalid argument "x" for "-n, --last" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (["-d=x"], 'invalid argument "x" for "-d, --detach" flag: strconv.ParseBool: parsing "x": invalid syntax'),
    (["-m", "abc"], "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'"),
    (["--cpus", "x"], 'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'),
    (["--interval", "5"], 'invalid argument "5" for "--interval" flag: time: missing unit in duration "5"'),
])
def test_errors_in_dockers_words(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as e:
        fs().parse(argv)
    assert str(e.value) == message


def test_help_anywhere() -> None:
    with pytest.raises(HelpRequested):
        fs().parse(["-d", "--help"])
    with pytest.raises(HelpRequested):
        fs().parse(["-h"])


def test_conversions() -> None:
    opts, _ = fs().parse(["-m", "512m", "--memory-swap", "-1", "--cpus", "1.5", "--interval", "1m30s",
                          "-o", "a=b", "-o", "c=d=e", "-n", "0x10"])
    assert opts["memory"] == 512 * 1024 * 1024
    assert opts["memory-swap"] == -1
    assert opts["cpus"] == 1.5
    assert opts["interval"] == 90.0
    assert opts["opt"] == {"a": "b", "c": "d=e"}
    assert opts["last"] == 16


@pytest.mark.parametrize("text,value", [
    ("100", 100), ("1k", 1024), ("1KB", 1024), ("1.5g", int(1.5 * 1024**3)), ("2MiB", 2 * 1024**2), ("0", 0),
])
def test_ram_sizes(text: str, value: int) -> None:
    assert parse_ram_size(text) == value


@pytest.mark.parametrize("text,value", [("1h", 3600.0), ("1.5s", 1.5), ("300ms", 0.3), ("-2m", -120.0), ("0", 0.0)])
def test_durations(text: str, value: float) -> None:
    assert parse_go_duration(text) == pytest.approx(value)


def test_duration_formatting() -> None:
    assert format_go_duration(0) == "0s"
    assert format_go_duration(90) == "1m30s"
    assert format_go_duration(7200) == "2h0m0s"
    assert format_go_duration(0.5) == "500ms"


def test_usage_layout_matches_pflag() -> None:
    text = FlagSet([
        Flag("all", "a", "bool", help="Show all containers (default shows just running)"),
        Flag("last", "n", "int", default=-1, help="Show n last created containers (includes all states)"),
        Flag("format", help="Format output"),
    ]).usages(79)
    assert text.splitlines() == [
        "  -a, --all             Show all containers (default shows just running)",
        "      --format string   Format output",
        "  -n, --last int        Show n last created containers (includes all",
        "                        states) (default -1)",
    ]
