"""Entry point of the ``sdpipe`` command."""

from __future__ import annotations

import shlex
import sys

import click

from sdpipe import __version__
from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.generate import generate
from sdpipe.cli.load_test import load_test
from sdpipe.errors import ConfigError
from sdpipe.jobs import JobProblem, check_job, format_problems, is_job_file, job_command, load_job
from sdpipe.registry import available_pipelines, get_pipeline


class PipelineGroup(click.Group):
    """``sdpipe run NAME``: loads a pipeline's command only when it is named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(available_pipelines())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if is_job_file(cmd_name) and cmd_name not in available_pipelines():
            return job_command(load_job(cmd_name))
        if cmd_name not in available_pipelines():
            return None
        return get_pipeline(cmd_name).make_command()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sdpipe")
def cli() -> None:
    """Run big-data batch pipelines on Dask, on a laptop or a cluster.

    Inputs and outputs are local paths or fsspec URLs (az://, abfs://, ...).
    Run `sdpipe list` for the pipelines, `sdpipe run PIPELINE --help` for one
    pipeline's options.

    \b
    Exit codes: 0 success, 1 the run failed, 2 usage error,
                3 a data verdict you asked to fail on, 75 another run holds the lock.
    """


@cli.command(name="list")
def list_pipelines() -> None:
    """List the pipelines, one line each."""
    for name in available_pipelines():
        spec = get_pipeline(name)
        click.echo(f"{name:<20} {spec.summary}")


@cli.group(cls=PipelineGroup)
def run() -> None:
    """Run a pipeline by name, or the job that a job file describes.

    Options given after a job file override the file's values.

    \b
    Example: sdpipe run taxi-speed --input 'data/*.csv' --json
    Example: sdpipe run pipelines/taxi-speed.toml --group-by weekday
    """


@cli.command()
@click.argument("job_files", metavar="JOB_FILE...", nargs=-1, required=True)
@click.option("--require-env", is_flag=True,
              help="Treat an environment variable that a file references but that is not set as a mistake, "
              "for a check on the host that runs the jobs. Without it, such a variable is a warning.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the mistakes and the warnings, not the valid files.")
def check(job_files: tuple[str, ...], require_env: bool, quiet: bool) -> None:
    """Check job files without running them, and list every mistake with its key.

    Nothing is read from the inputs and no cluster is contacted, so a job
    file that points at remote storage or a remote scheduler checks offline.
    An environment variable that the file references but that is not set
    here is a warning (a run fails without it); --require-env makes it a
    mistake, for a check on the host that runs the jobs.

    \b
    Example: sdpipe check pipelines/*.toml
    Example: sdpipe check --require-env /etc/sdpipe/nightly.toml
    """
    failed = 0
    for path in job_files:
        job, problems = check_job(path)
        unset = [p for p in problems if p.unset_variable is not None and not require_env]
        mistakes = [p for p in problems if p not in unset]
        if mistakes:
            failed += 1
            click.echo(format_problems(path, mistakes), err=True)
        elif not quiet and job is not None:
            click.echo(f"{path}: valid {job.pipeline} job")
            click.echo("  " + shlex.join(job.command_line()))
        # A warning, listed whatever else is wrong with the file, and also with --quiet.
        if unset:
            click.echo(_unset_warning(path, unset), err=True)
    if failed:
        raise ConfigError(f"{failed} of {len(job_files)} job file{'s' if len(job_files) != 1 else ''} invalid")


def _unset_warning(path: str, unset: list[JobProblem]) -> str:
    names = ", ".join(f"{p.unset_variable} ({p.key})" for p in unset)
    return (
        f"{path}: warning: not set here: {names}; a run needs "
        f"{'them' if len(unset) > 1 else 'it'} exported (check with --require-env to count this as a mistake)"
    )


cli.add_command(generate)
cli.add_command(load_test)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with sdpipe's exit codes."""
    sys.exit(run_with_exit_codes(cli, argv))


if __name__ == "__main__":
    main()
