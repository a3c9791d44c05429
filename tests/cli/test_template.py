"""The Go text/template subset used by --format (pure)."""

from __future__ import annotations

import pytest

from dockyard.cli.template import TemplateError, go_sprintf, gofmt, render

DATA = {
    "Id": "abc",
    "Name": "/demo",
    "State": {"Running": True, "Pid": 42, "ExitCode": 0, "Health": None},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a.x": "1"}, "Cmd": ["sh"], "Tty": False},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
    "Mounts": [],
    "Size": 1e6,
}


@pytest.mark.parametrize("tmpl,out", [
    ("{{.State.Running}}", "true"),
    ("{{.Name}}", "/demo"),
    ("{{json .Config.Cmd}}", '["sh"]'),
    ("{{json .Config.Labels}}", '{"a.x":"1","b":"2"}'),
    ("{{json .State}}", '{"Running":true,"Pid":42,"ExitCode":0,"Health":null}'),
    ("{{.Config.Labels}}", "map[a.x:1 b:2]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Missing}}", "<no value>"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Size}}", "1e+06"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}", "0=A=1;1=B=2;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}", "a.x:1 b:2 "),
    ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
    ("{{index .Config.Labels \"a.x\"}}", "1"),
    ("{{index .Config.Env 1}}", "B=2"),
    ("{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "8080"),
    ("{{upper .Name}} {{lower \"ABC\"}} {{title \"hello world\"}}", "/DEMO abc Hello World"),
    ("{{join .Config.Env \",\"}}", "A=1,B=2"),
    ("{{split \"a:b\" \":\"}}", "[a b]"),
    ("{{len .Config.Env}}", "2"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}a{{else if eq .State.Pid 42}}b{{else}}c{{end}}", "b"),
    ("{{if and .State.Running (gt .State.Pid 10)}}yes{{end}}", "yes"),
    ("{{if or .Config.Tty .State.Running}}yes{{end}}", "yes"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{with .Nope}}x{{else}}y{{end}}", "y"),
    ("{{$n := .Name}}{{$n}}{{$.Id}}", "/demoabc"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("{{/* comment */}}x", "x"),
    ("{{printf \"%s-%d-%5s|%-3s|%q\" .Name .State.Pid \"ab\" \"c\" \"q\"}}", '/demo-42-   ab|c  |"q"'),
    ("{{.Name | printf \"%s!\"}}", "/demo!"),
    ("{{pad .Name 1 2}}|", " /demo  |"),
    ("{{truncate .Name 3}}", "/de"),
    ("{{println \"x\"}}", "x\n"),
    ("{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}", "A=1"),
])
def test_render(tmpl: str, out: str) -> None:
    assert render(tmpl, DATA) == out


def test_methods_with_arguments() -> None:
    class Row:
        def Label(self, name: str) -> str:  # noqa: N802
            return {"k": "v"}.get(name, "")

        def ID(self) -> str:  # noqa: N802
            return "id1"

    assert render('{{.ID}} {{.Label "k"}}', Row()) == "id1 v"


@pytest.mark.parametrize("bad", ["{{.Foo", "{{nosuchfunc .}}", "{{if .A}}x", "{{end}}", '{{"unterminated}}'])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(TemplateError):
        render(bad, DATA)


def test_go_value_formatting() -> None:
    assert gofmt(True) == "true"
    assert gofmt(None) == "<nil>"
    assert gofmt([1, "a", [2]]) == "[1 a [2]]"
    assert gofmt({"b": 1, "a": {"c": False}}) == "map[a:map[c:false] b:1]"
    assert gofmt(123456.0) == "123456"
    assert gofmt(0.5) == "0.5"
    assert go_sprintf("%v %t %x", [1, 2], True, 255) == "[1 2] true ff"
