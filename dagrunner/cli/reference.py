"""docs/cli.md, generated from the click tree: every command, its usage, help text and options.

    python -m dagrunner.cli.reference            # print the reference
    python -m dagrunner.cli.reference --write    # write docs/cli.md (tests/cli/test_cli_reference.py fails when stale)

The text comes from the commands themselves, so the reference cannot drift from `--help`; the output does
not depend on the terminal width or the machine (no defaults computed at run time are shown).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

HEADER = """# CLI reference

Generated from the commands by `python -m dagrunner.cli.reference --write`; do not edit by hand
(`tests/cli/test_cli_reference.py` fails when this file is stale). Every command also answers `--help`,
and every command that prints a table takes `--json`. Global options (`dagrunner [OPTIONS] COMMAND`) come
before the command: `dagrunner --verbose dags list`.
"""


def generate(root: click.Command | None = None) -> str:
    """The whole reference as Markdown."""
    if root is None:
        from dagrunner.cli.main import cli

        root = cli
    parts = [HEADER]
    # The command's context_settings (e.g. `-h` for help) as a real invocation applies them; click caches
    # the help option per command, so a context without them would render differently once `--help` ran.
    for path, command, ctx in _walk(root, click.Context(root, info_name="dagrunner", **root.context_settings)):
        parts.append(_section(path, command, ctx))
    return "\n".join(parts).rstrip() + "\n"


def _walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[str, click.Command, click.Context]]:
    yield ctx.command_path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings))


def _section(path: str, command: click.Command, ctx: click.Context) -> str:
    level = "#" * min(2 + path.count(" "), 4)
    lines = [f"{level} `{path}`", "", "```", f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    help_text = _dedent(command.help or "")
    if help_text:
        lines += [help_text, ""]
    options = [
        record
        for param in command.get_params(ctx)
        if isinstance(param, click.Option) and (record := param.get_help_record(ctx))
    ]
    if options:
        lines += ["| option | meaning |", "|---|---|"]
        lines += [f"| `{_cell(name)}` | {_cell(text)} |" for name, text in options]
        lines.append("")
    if isinstance(command, click.Group):
        subs = [(name, sub) for name in sorted(command.list_commands(ctx)) if (sub := command.get_command(ctx, name))]
        lines += ["| command | what it does |", "|---|---|"]
        lines += [f"| `{path} {name}` | {_cell(sub.get_short_help_str(limit=120))} |" for name, sub in subs]
        lines.append("")
    return "\n".join(lines)


def _dedent(text: str) -> str:
    import inspect

    return inspect.cleandoc(text).replace("\b\n", "")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def default_path() -> Path:
    return Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def main(argv: list[str]) -> int:
    text = generate()
    if "--write" in argv:
        default_path().write_text(text, encoding="utf-8")
        print(f"wrote {default_path()}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
