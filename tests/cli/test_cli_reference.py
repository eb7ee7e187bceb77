"""docs/cli.md is generated from the click tree; this fails when a command changed and the file was not."""

from __future__ import annotations

import click

from dagrunner.cli.reference import default_path, generate


def test_docs_cli_md_is_current() -> None:
    assert default_path().read_text(encoding="utf-8") == generate(), (
        "docs/cli.md is stale: run `python -m dagrunner.cli.reference --write` and commit the result"
    )


def test_every_command_has_a_section_with_its_usage_and_options() -> None:
    @click.group()
    def root() -> None:
        """Root help."""

    @root.command("greet")
    @click.argument("name")
    @click.option("--loud", is_flag=True, help="Shout | twice.")
    def greet(name: str, loud: bool) -> None:
        """Say hello to NAME."""

    text = generate(root)
    assert "### `dagrunner greet`" in text
    assert "dagrunner greet [OPTIONS] NAME" in text
    assert "Say hello to NAME." in text
    assert "| `--loud` | Shout \\| twice. |" in text  # a pipe in help text does not break the table
    assert "| `dagrunner greet` | Say hello to NAME. |" in text
