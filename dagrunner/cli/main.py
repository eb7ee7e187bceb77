"""The `dagrunner` command: a thin click tree that parses, calls the library, and renders.

Errors we raise on purpose (`DagRunnerError`) print one line and exit 1; tracebacks only with --verbose.
"""

from __future__ import annotations

import sys
import traceback

import click

from dagrunner import __version__
from dagrunner.cli import render
from dagrunner.cli.context import CliContext
from dagrunner.errors import DagRunnerError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    ctx.obj = CliContext(
        verbose=verbose, home=home, overrides={"dags_folder": dags_folder, "db_url": db_url}
    )
    ctx.call_on_close(ctx.obj.close)


@cli.command()
def version() -> None:
    """Print the dagrunner version."""
    render.info(f"dagrunner {__version__}")


def _register() -> None:
    from dagrunner.cli import config, dags, db, tasks

    cli.add_command(config.config)
    cli.add_command(dags.dags)
    cli.add_command(db.db)
    cli.add_command(tasks.tasks)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click tree and turn our errors into one clear line and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(a in ("-v", "--verbose") for a in args)
    try:
        code = cli.main(args=args, prog_name="dagrunner", standalone_mode=False)
    except click.exceptions.Abort:
        render.error("aborted")
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DagRunnerError as exc:
        if verbose:
            traceback.print_exc()
        render.error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        render.error("interrupted")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
