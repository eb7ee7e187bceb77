"""The `dagrunner` command: a thin click tree that parses, calls the library, and renders.

Errors we raise on purpose (`DagRunnerError`) print one line and exit 1; so does any other exception that
reaches the top (as "unexpected ...", a bug to report); tracebacks only with --verbose.
"""

from __future__ import annotations

import traceback

import click

from dagrunner import __version__
from dagrunner.cli import render
from dagrunner.cli.context import CliContext
from dagrunner.errors import DagRunnerError


class UserError(click.ClickException):
    """One of our errors, shown as one line (`Error: ...`) with exit code 1."""

    exit_code = 1


class DagRunnerGroup(click.Group):
    """The root group: turns `DagRunnerError` from any command into a one-line error.

    Doing it here rather than around `main()` means every way of invoking the tree (the console
    script, `python -m dagrunner`, click's test runner) behaves the same.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dagrunner.argv"] = list(args)  # the audit log's actor: the command as typed
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DagRunnerError as exc:
            _traceback_if_verbose(ctx)
            raise UserError(str(exc)) from exc
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors, exit codes, a declined confirmation
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a bare traceback
            _traceback_if_verbose(ctx)
            raise UserError(unexpected_line(exc)) from exc


def _traceback_if_verbose(ctx: click.Context) -> None:
    if isinstance(ctx.obj, CliContext) and ctx.obj.verbose:
        traceback.print_exc()


def unexpected_line(exc: BaseException, limit: int = 300) -> str:
    """An error we did not foresee as one line: its type and the first line of its message, then how to see
    more. Whatever it is, a user sees one line; the traceback is one `--verbose` away."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(first) > limit:
        first = first[:limit] + "..."
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"unexpected {what} (run with --verbose for the traceback)"


@click.group(cls=DagRunnerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Show full tracebacks for errors.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    help="Project directory (default: $DAGRUNNER_HOME, else the current directory).",
)
@click.option("--dags-folder", type=click.Path(path_type=str), help="Folder of DAG files (default: ./dags).")
@click.option("--db-url", help="Metadata DB URL (default: sqlite in ./.dagrunner; env DAGRUNNER_DB_URL).")
@click.version_option(__version__, "--version", prog_name="dagrunner")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, home: str | None, dags_folder: str | None, db_url: str | None) -> None:
    """dagrunner: an Airflow-style DAG scheduler.

    Drop DAG files into dags/, run `dagrunner scheduler`, re-process history with `dagrunner backfill`.
    """
    ctx.obj = CliContext(verbose=verbose, home=home, overrides={"dags_folder": dags_folder, "db_url": db_url})
    ctx.call_on_close(ctx.obj.close)


@cli.command()
def version() -> None:
    """Print the dagrunner version."""
    render.info(f"dagrunner {__version__}")


def _register() -> None:
    from dagrunner.cli import config, dags, db, pools, runs, tasks
    from dagrunner.cli.api_server import api_server, standalone
    from dagrunner.cli.approvals import approvals
    from dagrunner.cli.approvals import register as register_approvals
    from dagrunner.cli.assets import assets
    from dagrunner.cli.audit import audit
    from dagrunner.cli.backfill import backfill
    from dagrunner.cli.events import events
    from dagrunner.cli.jobs import jobs
    from dagrunner.cli.overrides import register as register_overrides
    from dagrunner.cli.scheduler import scheduler
    from dagrunner.cli.triggerer import triggerer
    from dagrunner.cli.users import users
    from dagrunner.cli.worker import worker

    cli.add_command(scheduler)
    cli.add_command(backfill)
    cli.add_command(runs.runs)
    cli.add_command(audit)
    cli.add_command(config.config)
    cli.add_command(dags.dags)
    cli.add_command(db.db)
    cli.add_command(tasks.tasks)
    cli.add_command(pools.pools)
    register_overrides(tasks.tasks, runs.runs)
    cli.add_command(approvals)
    cli.add_command(assets)
    register_approvals(tasks.tasks)
    cli.add_command(events)  # #12 part B
    cli.add_command(triggerer)  # #12 part B
    cli.add_command(jobs)  # #13 part F
    cli.add_command(worker)  # #13 part E
    cli.add_command(api_server)  # #14
    cli.add_command(standalone)  # #14
    cli.add_command(users)  # #14
    from dagrunner.cli.connections import connections  # #15
    from dagrunner.cli.variables import rotate_fernet_key, variables  # #15

    cli.add_command(connections)  # #15
    cli.add_command(variables)  # #15
    cli.add_command(rotate_fernet_key)  # #15


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="dagrunner")
