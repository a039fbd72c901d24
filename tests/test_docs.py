"""The docs check: README.md and docs/*.md against the repository and the `dataengine` command.

Parses only (no Ray, no models): every relative link and image resolves (anchors to a heading of the target
page), every repository path named in inline code exists, every `dataengine ...` line in a bash block names a
real command with real options, an acceptable number of arguments, a real pipeline and valid `--set` overrides,
and the README's first code block holds the command CI runs (`.ci/run`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from dataengine import pipeline
from dataengine.cli import main

ROOT = Path(__file__).resolve().parents[1]
# The front door and docs/, plus the pages that sit beside what they describe (checked, not edited here).
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "BENCHMARKS.md",
    *sorted(ROOT.glob("deploy/*/README.md")),
]
CI_COMMAND = "./scripts/setup.sh && .venv/bin/python -m pytest"

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# Inline code naming a file or folder of the repository (storage/ is never committed, so it is not checked).
REPO_PATH = re.compile(r"(?:dataengine|docs|deploy|tests|scripts|pipelines|schemas|\.ci)/[\w./*-]*")
SHELL_LANGS = {"bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", "|", ";", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
REPO_FILE_SUFFIXES = (".yaml", ".yml", ".sh", ".py", ".json", ".toml", ".md")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fences(text: str) -> Iterator[tuple[str, str, int]]:
    """(language, body, line number of the body's first line) of every fenced code block."""
    for m in FENCE.finditer(text):
        yield m.group(1).lower(), m.group(2), text.count("\n", 0, m.start(2)) + 1


def prose(text: str) -> str:
    """The page without its fenced blocks (kept as blank lines, so line numbers hold)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.replace("`", "").strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(prose(path.read_text(encoding="utf-8"))):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    body = prose(text)
    outside_code = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), body)
    bad = []
    for m in LINK.finditer(outside_code):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        where = f"{rel(page)}:{line_of(text, m.start())}: {target}"
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.is_relative_to(ROOT):
            bad.append(f"{where}: points outside the repository")
        elif not dest.exists():
            bad.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{where}: no heading #{anchor} in {rel(dest)}")
    for m in CODE_SPAN.finditer(body):
        span = m.group(2).strip()
        if "<" in span or not REPO_PATH.fullmatch(span):
            continue
        if not list(ROOT.glob(span.rstrip("/"))):
            bad.append(f"{rel(page)}:{line_of(text, m.start())}: `{span}`: no such file in the repository")
    assert not bad, "broken links or paths:\n" + "\n".join(bad)


def shell_lines(page: Path) -> Iterator[tuple[int, str]]:
    """(line number, command line) of every line of the page's bash blocks, continuations joined."""
    for lang, body, first in fences(page.read_text(encoding="utf-8")):
        if lang not in SHELL_LANGS:
            continue
        pending, start = "", 0
        for n, line in enumerate(body.splitlines(), first):
            if not pending:
                start = n
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield start, pending + line
            pending = ""


def segments(line: str) -> list[list[str]]:
    """The simple commands of one shell line: comments dropped, split at &&, ||, |, ;."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in SEPARATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [s for s in out if s]


def program(tokens: list[str]) -> tuple[str, list[str]]:
    """The program (`.venv/bin/` dropped, `python -m dataengine.cli` read as `dataengine`) and its arguments."""
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return "", []
    name = re.sub(r"^(\./)?\.venv/bin/", "", tokens[0])
    if name in ("python", "python3") and tokens[1:3] == ["-m", "dataengine.cli"]:
        return "dataengine", tokens[3:]
    return name, tokens[1:]


def find_option(cmd: click.Command, name: str) -> click.Parameter | None:
    for param in cmd.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def check_dataengine(args: list[str], complete: bool = True) -> list[str]:
    """What is wrong with `dataengine ARGS` (empty when nothing is): parsed against the click tree, never run.

    `complete=False` (a command quoted in prose, which may leave out arguments) skips the argument count.
    """
    # `[--logs]`, `[--engine openai --base-url URL]`: optional parts are shown in brackets.
    args = [a.strip("[]") for a in args]
    args = [a for a in args if a and a != "..."]
    cmd: click.Command = main
    path = ["dataengine"]
    positionals: list[str] = []
    options: list[tuple[str, str | None]] = []
    errors = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token.startswith("--") or (token.startswith("-") and len(token) > 1):
            name, eq, value = token.partition("=")
            if name == "--help":
                continue
            param = find_option(cmd, name)
            if param is None:
                errors.append(f"`{' '.join(path)}` has no option {name}")
                continue
            assert isinstance(param, click.Option)
            if not (param.is_flag or param.count) and not eq:
                if i >= len(args):
                    errors.append(f"`{' '.join(path)} {name}` needs a value")
                    break
                value = args[i]
                i += 1
            options.append((param.name or name, value if (eq or not param.is_flag) else None))
            continue
        if isinstance(cmd, click.Group):
            sub = cmd.get_command(click.Context(cmd), token)
            if sub is None:
                errors.append(f"`{' '.join(path)}` has no command {token!r}")
                return errors
            cmd = sub
            path.append(token)
            continue
        positionals.append(token)
    where = f"`{' '.join(path)}`"
    if isinstance(cmd, click.Group):
        return [*errors, f"{where} is a group: name one of its commands ({', '.join(sorted(cmd.commands))})"]
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    most = None if any(a.nargs == -1 for a in arguments) else sum(a.nargs for a in arguments)
    least = sum(a.nargs for a in arguments if a.required and a.nargs > 0)
    if (complete and len(positionals) < least) or (most is not None and len(positionals) > most):
        wanted = " ".join(a.human_readable_name for a in arguments) or "no arguments"
        errors.append(f"{where} takes {wanted}, got {len(positionals)}: {positionals}")
    errors += check_pipelines(cmd, path, positionals, options)
    return errors


def check_pipelines(
    cmd: click.Command, path: list[str], positionals: list[str], options: list[tuple[str, str | None]]
) -> list[str]:
    """Pipelines named (`run NAME`, `submit NAME`, `scheduler NAMES`, `demo`) exist and take the `--set`s shown."""
    command = " ".join(path[1:])
    if command in ("run", "submit"):
        names = positionals[:1]
    elif command == "scheduler":
        names = positionals
    elif command == "demo":
        names = ["demo"]
    else:
        return []
    sets = [value for name, value in options if name == "sets" and value]
    errors = []
    for name in names:
        try:
            pipeline.load(name, sets)
        except pipeline.PipelineError as exc:
            errors.append(f"`dataengine {command}`: {exc}".replace(str(ROOT) + "/", ""))
    return errors


def check_other(name: str, args: list[str]) -> list[str]:
    """A command that is not `dataengine`: only the repository files it names must exist."""
    errors = []
    if name.startswith("./") and not (ROOT / name).exists():
        errors.append(f"no such file: {name}")
    for arg in args:
        if "://" in arg or arg.startswith(("/", "-", "~", "storage/", "$")) or not arg.endswith(REPO_FILE_SUFFIXES):
            continue
        if "/" in arg or (ROOT / arg).exists() or name in ("ray", "kubectl"):
            if not (ROOT / arg).exists():
                errors.append(f"no such file: {arg}")
    return errors


INLINE_COMMAND = re.compile(r"(?:\./)?(?:\.venv/bin/)?dataengine\s")


def inline_commands(page: Path) -> Iterator[tuple[int, str]]:
    """(line number, command) of every `dataengine ...` code span in the page's prose."""
    text = page.read_text(encoding="utf-8")
    for m in CODE_SPAN.finditer(prose(text)):
        span = " ".join(m.group(2).split())
        if INLINE_COMMAND.match(span):
            yield line_of(text, m.start()), span


def shown_commands() -> Iterator[tuple[str, str, str, list[str], bool]]:
    """(where, line, program, arguments, complete) of every command in a bash block or a `dataengine` code span."""
    for page in PAGES:
        lines = [(n, line, True) for n, line in shell_lines(page)]
        lines += [(n, line, False) for n, line in inline_commands(page)]
        for n, line, complete in lines:
            try:
                parts = segments(line)
            except ValueError as exc:  # unbalanced quotes
                yield f"{rel(page)}:{n}", line, "?", [f"cannot parse: {exc}"], complete
                continue
            for tokens in parts:
                name, args = program(tokens)
                if name:
                    yield f"{rel(page)}:{n}", line, name, args, complete


def test_shown_commands_are_real() -> None:
    bad = []
    checked = 0
    for where, line, name, args, complete in shown_commands():
        if name == "?":
            errors = args
        elif name == "dataengine":
            errors = check_dataengine(args, complete)
            checked += 1
        else:
            errors = check_other(name, args)
        bad += [f"{where}: {line.strip()}\n    {e}" for e in errors]
    assert checked >= 30, f"only {checked} dataengine commands found in the docs: is the parsing broken?"
    assert not bad, f"{len(bad)} problem(s) in commands shown in the docs:\n" + "\n".join(bad)


def test_python_snippets_compile() -> None:
    bad = []
    for page in PAGES:
        for lang, body, first in fences(page.read_text(encoding="utf-8")):
            if lang in ("python", "py"):
                try:
                    compile(body, f"{rel(page)}:{first}", "exec")
                except SyntaxError as exc:
                    bad.append(f"{rel(page)}:{first + (exc.lineno or 1) - 1}: {exc.msg}")
    assert not bad, "python blocks that do not parse:\n" + "\n".join(bad)


def test_check_catches_mistakes() -> None:
    """The checker itself: a wrong command, option, argument count, pipeline or --set key is reported."""
    assert check_dataengine(["run", "clean", "--input", "x"]) == []
    assert check_dataengine(["--storage", "/d", "report", "R", "--out", "r.html", "[--gallery", "4]"]) == []
    assert check_dataengine(["runz"])
    assert check_dataengine(["run", "clean", "--inptu", "x"])
    assert check_dataengine(["inspect"])
    assert check_dataengine(["inspect"], complete=False) == []
    assert check_dataengine(["inspect", "A", "B"])
    assert check_dataengine(["export"])
    assert check_dataengine(["run", "nope", "--input", "x"])
    assert check_dataengine(["run", "clean", "--set", "stages.image.min_sid=3"])
    assert segments("A=1 .venv/bin/dataengine runs && ls  # a comment") == [
        ["A=1", ".venv/bin/dataengine", "runs"],
        ["ls"],
    ]
    assert program(["A=1", ".venv/bin/dataengine", "runs"]) == ("dataengine", ["runs"])
    assert check_other("./scripts/nothing.sh", [])
    assert check_other("ray", ["up", "no_cluster.yaml"])


def test_readme_starts_with_the_ci_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert CI_COMMAND in ci.splitlines(), ".ci/run no longer runs the README's test command"
    lang, body, _ = next(fences(readme))
    commands = [line.split("#")[0].strip() for line in body.splitlines() if line.strip()]
    assert lang == "bash"
    assert readme.index("```") < readme.index("\n## "), "the two commands come before the first section"
    assert commands == ["./scripts/setup.sh && .venv/bin/dataengine demo", CI_COMMAND]
