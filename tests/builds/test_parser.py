"""Pure parts of the builder: the Dockerfile parser, variable substitution, .dockerignore
matching, and the instruction helpers (no daemon, no root)."""

from __future__ import annotations

import pytest

from dockyard.build import dockerignore, instructions, parser, shlex
from dockyard.errors import InvalidParameter


def test_parse_comments_continuations_case_and_json() -> None:
    df = parser.parse(
        "# a comment\n"
        "from busybox AS Base\n"
        "\n"
        "RUN echo one \\\n"
        "  # a comment inside\n"
        "\n"
        "  two\n"
        "CMD [\"sh\", \"-c\", \"x\"]\n"
        "ENTRYPOINT [not json\n"
        "COPY --from=base --chown=1:2 a b /c/\n"
    )
    names = [i.name for i in df.instructions]
    assert names == ["from", "run", "cmd", "entrypoint", "copy"]
    run = df.instructions[1]
    assert run.line == 4 and run.rest == "echo one   two" and run.json is None
    assert df.instructions[2].json == ["sh", "-c", "x"]
    assert df.instructions[3].json is None and df.instructions[3].rest == "[not json"
    cp = df.instructions[4]
    assert cp.flags == {"from": "base", "chown": "1:2"} and cp.rest == "a b /c/"


def test_escape_directive() -> None:
    df = parser.parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo x\n")
    assert df.escape == "`"
    assert df.instructions[1].rest == "dir c:\\   && echo x"
    # a directive after an instruction is a comment
    assert parser.parse("FROM busybox\n# escape=`\nRUN a \\\n b\n").instructions[1].rest == "a  b"


@pytest.mark.parametrize(("text", "message"), [
    ("FROM busybox\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM a b\n", "Dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a\nSHELL /bin/bash\n", "Dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nENV\n", "Dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nENV x\n", "Dockerfile parse error line 2: ENV must have two arguments"),
    ("FROM a\nCOPY x\n", "Dockerfile parse error line 2: COPY requires at least two arguments, but only one was "
                         "provided. Destination could not be determined."),
    ("FROM a\nWORKDIR a b\n", "Dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` "
                                        "isn't allowed"),
])  # fmt: skip
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        parser.parse(text)
    assert e.value.message == message


def test_parse_kv_forms() -> None:
    inst = parser.parse('FROM a\nENV A=1 B="two words" C=x\\ y\n').instructions[1]
    assert parser.parse_kv(inst, "ENV") == [("A", "1"), ("B", '"two words"'), ("C", "x\\ y")]
    inst = parser.parse("FROM a\nENV NAME some value here\n").instructions[1]
    assert parser.parse_kv(inst, "ENV") == [("NAME", "some value here")]


def test_substitution() -> None:
    env = {"A": "a", "EMPTY": "", "SP": "x y"}
    w = shlex.process_word
    assert w("$A-${A}-$NOPE-${NOPE}", env) == "a-a--"
    assert w("${NOPE:-dflt} ${EMPTY:-e} ${EMPTY-keep} ${A:+alt} ${NOPE:+alt}", env) == "dflt e  alt "
    assert w("\\$A '$A' \"$A \\$A\"", env) == "$A $A a $A"
    assert w("`$A", env, escape="`") == "$A"
    assert shlex.process_words("$SP 'q w' \"$A b\"", env) == ["x y", "q w", "a b"]
    with pytest.raises(InvalidParameter):
        w("${NOPE:?is required}", env)


def test_dockerignore() -> None:
    pats = dockerignore.read_patterns("# c\n*.log\n!keep.log\n/build\nsecret/**\n**/*.tmp\n\n  docs/*.md  \n")
    assert pats == ["*.log", "!keep.log", "build", "secret/**", "**/*.tmp", "docs/*.md"]
    m = dockerignore.Matcher(pats)
    assert m.excluded("a.log") and not m.excluded("keep.log") and not m.excluded("sub/a.log")
    assert m.excluded("build") and m.excluded("build/x/y")
    assert m.excluded("secret/a") and m.excluded("secret/a/b") and not m.excluded("secret")
    assert m.excluded("x.tmp") and m.excluded("a/b/c.tmp")
    assert m.excluded("docs/a.md") and not m.excluded("docs/sub/a.md")
    assert m.has_exceptions


def test_instruction_helpers() -> None:
    assert instructions.go_quote_list(["sh", "-c", 'say "hi"']) == '["sh" "-c" "say \\"hi\\""]'
    assert instructions.parse_duration("1m30s") == 90_000_000_000
    assert instructions.parse_duration("250ms") == 250_000_000
    with pytest.raises(InvalidParameter):
        instructions.parse_duration("5 s")
    assert instructions.expose_ports(["80", "53/udp", "8000-8001"]) == {
        "80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert instructions.set_env(["A=1", "B=2"], "A", "3") == ["A=3", "B=2"]
    hc = instructions.healthcheck(parser.parse("FROM a\nHEALTHCHECK --timeout=3s CMD [\"true\"]\n").instructions[1])
    assert hc == {"Test": ["CMD", "true"], "Timeout": 3_000_000_000}
    assert instructions.healthcheck_comment(hc) == 'HEALTHCHECK &{["CMD" "true"] "0s" "3s" "0s" \'\\x00\'}'
    instructions.check_platform("linux/amd64")
    with pytest.raises(InvalidParameter):
        instructions.check_platform("linux/arm64")


def test_chown_lookup(tmp_path) -> None:  # noqa: ANN001
    from dockyard.build.builder import _owner

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\nbob:x:5:6::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    root = str(tmp_path)
    assert _owner(root, "bob") == (5, 5) and _owner(root, "bob:staff") == (5, 50) and _owner(root, "7") == (7, 7)
    with pytest.raises(InvalidParameter) as e:
        _owner(root, "nosuch")
    assert e.value.message == ("unable to convert uid/gid chown string to host mapping: can't find uid for user "
                               "nosuch: no such user: nosuch")
