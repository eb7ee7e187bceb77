"""`dagrunner variables set|get|list|delete|import|export` (Airflow's commands; `--json` for scripts).

Values are stored encrypted (`persistence.fernet`). The value of a secret-looking key (password, token,
api_key, ...) is shown as `***` by `get` and `list` unless `get --reveal` is given; `export` writes the real
values to the file it is given (it is a backup). Setting and deleting are audited.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from dagrunner.authoring.variable import parse_json
from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.errors import InvalidArgumentError, NotFoundError
from dagrunner.execution.masking import MASK, is_sensitive


@click.group()
def variables() -> None:
    """Set, show, list, delete, import and export variables (values encrypted at rest)."""


@variables.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--description", help="What the variable is for.")
@click.option("-j", "--json", "serialize", is_flag=True, help="VALUE is JSON: check it and store it normalized.")
@pass_cli
def set_(cli: CliContext, key: str, value: str, description: str | None, serialize: bool) -> None:
    """Set variable KEY to VALUE (audited)."""
    from dagrunner.persistence.secrets import set_variable

    if serialize:
        value = json.dumps(_json_arg(key, value), indent=2)
    with cli.session() as session:
        set_variable(session, key, value, _box(cli), description=description, actor=cli.actor, when=datetime.now(UTC))
    render.info(f"variable {key} set")


@variables.command("get")
@click.argument("key")
@click.option("--default", "default", help="Print this when KEY is not set (instead of failing).")
@click.option("-j", "--json", "deserialize", is_flag=True, help="Parse the value as JSON and print it as JSON.")
@click.option("--reveal", is_flag=True, help="Print a secret-looking key's value instead of ***.")
@pass_cli
def get(cli: CliContext, key: str, default: str | None, deserialize: bool, reveal: bool) -> None:
    """Print the stored value of KEY (the environment's DAGRUNNER_VAR_* are not read here)."""
    from dagrunner.persistence.secrets import variable_value

    with cli.read_session() as session:
        value = variable_value(session, key, _box(cli))
    if value is None:
        if default is None:
            raise NotFoundError(f"no variable {key!r}; `dagrunner variables list` shows them")
        value = default
    if is_sensitive(key) and not reveal:
        value = MASK
    elif deserialize:
        value = json.dumps(parse_json(key, value, "the metadata DB"), indent=2)
    click.echo(value)


@variables.command("list")
@json_option("the variables")
@pass_cli
def list_variables(cli: CliContext, as_json: bool) -> None:
    """Every stored variable, secret-looking values shown as ***."""
    from dagrunner.persistence.secrets import list_variables as stored

    with cli.read_session() as session:
        rows = [(k, MASK if is_sensitive(k) else v, d) for k, v, d in stored(session, _box(cli))]
    if as_json:
        render.print_json([{"key": k, "value": v, "description": d} for k, v, d in rows])
        return
    render.table("variables", ["key", "value", "description"], rows)


@variables.command("delete")
@click.argument("key")
@pass_cli
def delete(cli: CliContext, key: str) -> None:
    """Delete variable KEY (audited)."""
    from dagrunner.persistence.secrets import delete_variable

    with cli.session() as session:
        delete_variable(session, key, actor=cli.actor, when=datetime.now(UTC))
    render.info(f"variable {key} deleted")


@variables.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--action-on-existing-key", type=click.Choice(["overwrite", "fail", "skip"]), default="overwrite",
              show_default=True, help="What to do with a key that is already set.")  # fmt: skip
@pass_cli
def import_(cli: CliContext, file: str, action_on_existing_key: str) -> None:
    """Set the variables of FILE, a JSON object (key -> value; a value that is not a string is stored as
    JSON), in one transaction."""
    from dagrunner.persistence.secrets import set_variable, variable_value

    data = _read_object(file)
    box = _box(cli)
    done = skipped = 0
    with cli.session() as session:
        for key, value in data.items():
            if action_on_existing_key != "overwrite" and variable_value(session, key, box) is not None:
                if action_on_existing_key == "fail":
                    raise InvalidArgumentError(f"variable {key!r} is already set (--action-on-existing-key fail)")
                skipped += 1
                continue
            text = value if isinstance(value, str) else json.dumps(value, indent=2)
            set_variable(session, key, text, box, description=None, actor=cli.actor, when=datetime.now(UTC))
            done += 1
    render.info(f"{done} variable(s) imported from {file}" + (f", {skipped} skipped" if skipped else ""))


@variables.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@pass_cli
def export(cli: CliContext, file: str) -> None:
    """Write every variable to FILE as a JSON object (values that are JSON written as JSON), mode 0600:
    real values, as a backup to import."""
    import os

    from dagrunner.persistence.secrets import list_variables as stored

    with cli.read_session() as session:
        rows = stored(session, _box(cli))
    data: dict[str, Any] = {}
    for key, value, _ in rows:
        try:
            data[key] = json.loads(value)
        except json.JSONDecodeError:
            data[key] = value
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    render.info(f"{len(data)} variable(s) exported to {file}")


def _json_arg(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"variable {key!r}: --json given but the value is not JSON: {exc}") from None


def _read_object(file: str) -> dict[str, Any]:
    try:
        with open(file) as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{file} must hold a JSON object of key -> value")
    return data


def _box(cli: CliContext):  # type: ignore[no-untyped-def]
    from dagrunner.persistence.fernet import secret_box

    return secret_box(cli.settings.state_folder)


@click.command("rotate-fernet-key")
@pass_cli
def rotate_fernet_key(cli: CliContext) -> None:
    """Re-encrypt every stored connection secret and variable with the first key of DAGRUNNER_FERNET_KEY
    (set it to 'new,old' first; afterwards 'new' alone is enough). Audited."""
    from dagrunner.persistence.secrets import rotate_secrets

    with cli.session() as session:
        count = rotate_secrets(session, _box(cli), actor=cli.actor, when=datetime.now(UTC))
    render.info(f"{count} stored value(s) re-encrypted with the first key")
