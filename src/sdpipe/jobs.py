"""Job files: a pipeline run written down in TOML, for schedulers and repeatable runs.

A job file names the pipeline and gives the values of its command-line
options::

    pipeline = "taxi-speed"

    [options]                  # any option of `sdpipe run PIPELINE`, without the dashes
    input = ["data/sample/csv/*.csv"]
    output = "output/taxi-speed"
    group-by = "date"

    [cluster]                  # the scheduler options
    scheduler = "tcp://dask-scheduler:8786"

    [storage_options]          # fsspec storage options for the inputs and the output
    account_name = "ACCOUNT"
    account_key = "${AZURE_STORAGE_KEY}"

Any string value may contain ``${NAME}``, replaced by the environment
variable ``NAME`` when the job is loaded.  A run fails when such a
variable is not set; ``sdpipe check`` only warns, unless asked with
``--require-env``.  A secret (a key whose name
contains key, secret, token, password, sas, credential or connection_string)
must be such a reference: a job file with an inline secret is invalid.

Values of the job file are the defaults of the pipeline's command, so
options given on the command line override them, and environment
variables that an option reads (``SDPIPE_SCHEDULER``, ...) do too, as in
click.  Storage options are merged key by key, the command line winning.
Relative paths are relative to the current directory, as on the command
line.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from sdpipe.errors import ConfigError
from sdpipe.io.secrets import mask_text

TOP_LEVEL_KEYS = ("pipeline", "description", "options", "cluster", "storage_options")
SECTIONS = ("options", "cluster", "storage_options")
# The click context's meta key under which a job run leaves its [cluster] table for cluster_from.
JOB_CLUSTER_KEY = "sdpipe.job_cluster"
STORAGE_PARAM = "storage_option"
CLI_ONLY_PARAMS = ("help",)
SECRET_WORDS = ("key", "secret", "token", "password", "sas", "credential", "connection_string")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class JobFileError(ConfigError):
    """A job file has mistakes; the message lists them, secrets already masked in each."""

    # Masking the whole text again would read "account_key: holds a secret" as a secret's value.
    masked = True


@dataclass(frozen=True)
class JobProblem:
    """One mistake in a job file: the dotted key it is at and what is wrong.

    ``unset_variable`` names the environment variable whose absence is the
    problem, a mistake for a run but not in the file itself.  ``safe``
    marks a message built from key and variable names only, which is shown
    as it is; any other message may quote a value and is masked.
    """

    key: str
    message: str
    unset_variable: str | None = None
    safe: bool = False

    def __str__(self) -> str:
        return f"{mask_text(self.key)}: {self.message if self.safe else mask_text(self.message)}"


@dataclass(frozen=True)
class Job:
    """A loaded and checked job file.

    ``defaults`` maps the pipeline command's parameter names to the job's
    values, secrets resolved; ``cluster`` is the [cluster] table, which
    :func:`sdpipe.cluster.resolve_cluster` ranks below flags and environment
    variables.  ``references`` keeps each value that named an environment
    variable as written, so that it can be shown without the secret.
    """

    path: str
    pipeline: str
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict, repr=False)
    cluster: dict[str, Any] = field(default_factory=dict)
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)
    references: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)

    def command_line(self) -> list[str]:
        """Return the equivalent ``sdpipe run`` arguments, each environment reference left as written."""
        args = ["sdpipe", "run", self.pipeline]
        for name, value in self.defaults.items():
            flag = self.flags.get(name, "--" + name.replace("_", "-"))
            shown = self.references.get(name, value)
            if isinstance(value, bool):
                if value:
                    args.append(flag)
            elif isinstance(value, (list, tuple)):
                for item in shown if isinstance(shown, (list, tuple)) else value:
                    args += [flag, str(item)]
            else:
                args += [flag, str(shown)]
        for key, value in self.cluster.items():
            shown = self.references.get(f"cluster.{key}", value)
            args += ["--" + key.replace("_", "-"), str(shown)]
        for key in self.storage_options:
            shown = self.references.get(f"storage_options.{key}", self.storage_options[key])
            args += ["--storage-option", f"{key}={shown}"]
        return args


def is_job_file(name: str) -> bool:
    """Return whether ``sdpipe run NAME`` names a job file rather than a pipeline."""
    return name.endswith(".toml") or os.sep in name or "/" in name


def load_job(path: str | os.PathLike, environ: dict[str, str] | None = None) -> Job:
    """Read, resolve and check a job file; raise :class:`ConfigError` listing every mistake."""
    job, problems = check_job(path, environ)
    if problems:
        raise JobFileError(format_problems(str(path), problems))
    assert job is not None
    return job


def check_job(path: str | os.PathLike, environ: dict[str, str] | None = None) -> tuple[Job | None, list[JobProblem]]:
    """Return the job and the list of its mistakes (empty when it is valid).

    Checks only the file itself: no input is listed and no cluster is
    contacted, so job files that point at remote storage check offline.
    A reference to an unset variable is a problem with ``unset_variable``
    set; the value it is in is not checked further.
    """
    raw = read_toml(path)
    environ = dict(os.environ if environ is None else environ)
    problems: list[JobProblem] = []

    pipeline = raw.get("pipeline")
    problems += _check_top_level(raw)
    command = _pipeline_command(pipeline, problems)

    resolved, references = _resolve_references(raw, environ, problems)
    unresolved = {problem.key for problem in problems if problem.unset_variable}
    problems += _check_inline_secrets(raw)
    if command is None:
        return None, problems

    defaults, cluster, storage_options = _check_sections(resolved, command, problems, unresolved)
    references = {_param_key(key, command): value for key, value in references.items()}
    job = Job(
        path=str(path),
        pipeline=str(pipeline),
        description=str(raw.get("description", "")),
        defaults=defaults,
        cluster=cluster,
        storage_options=storage_options,
        references=references,
        flags={param.name: "--" + key for key, param in _params_by_key(command).items() if param.name},
    )
    return job, problems


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a job file; raise :class:`ConfigError` naming the file and the syntax error."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"job file {str(path)!r} not found; give the path of a .toml job file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"job file {str(path)!r} is a directory; give the path of a .toml job file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {str(path)!r} is not valid TOML: {exc}") from exc


def format_problems(path: str, problems: list[JobProblem]) -> str:
    lines = [f"job file {path!r} has {len(problems)} mistake{'s' if len(problems) != 1 else ''}:"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def _check_top_level(raw: dict[str, Any]) -> list[JobProblem]:
    problems = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            problems.append(JobProblem(key, f"unknown key{_suggest(key, TOP_LEVEL_KEYS)}; valid keys: {', '.join(TOP_LEVEL_KEYS)}"))
    for section in SECTIONS:
        if section in raw and not isinstance(raw[section], dict):
            problems.append(JobProblem(section, f"must be a table ([{section}]), not {type(raw[section]).__name__}"))
    if "description" in raw and not isinstance(raw["description"], str):
        problems.append(JobProblem("description", "must be a string"))
    return problems


def _pipeline_command(pipeline: Any, problems: list[JobProblem]) -> click.Command | None:
    from sdpipe.registry import available_pipelines, get_pipeline

    choices = list(available_pipelines())
    if pipeline is None:
        problems.append(JobProblem("pipeline", f"missing; name one of {', '.join(choices)}"))
        return None
    if not isinstance(pipeline, str) or pipeline not in choices:
        problems.append(JobProblem("pipeline", f"unknown pipeline {pipeline!r}{_suggest(str(pipeline), choices)}; choose one of {', '.join(choices)}"))
        return None
    return get_pipeline(pipeline).make_command()


def _resolve_references(raw: dict[str, Any], environ: dict[str, str], problems: list[JobProblem]):
    """Replace ``${NAME}`` in every string value; return the resolved tree and the references as written."""
    references: dict[str, Any] = {}

    def resolve(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v, f"{key}.{k}" if key else k) for k, v in value.items()}
        if isinstance(value, list):
            resolved = [resolve(v, key) for v in value]
            if any(isinstance(v, str) and ENV_REFERENCE.search(v) for v in value):
                references[key] = value
            return resolved
        if not isinstance(value, str) or not ENV_REFERENCE.search(value):
            return value
        references.setdefault(key, value)

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in environ:
                problems.append(
                    JobProblem(key, f"environment variable {name} is not set; export it before the run", name, safe=True)
                )
                return ""
            return environ[name]

        return ENV_REFERENCE.sub(substitute, value)

    return resolve(raw, ""), references


def _check_inline_secrets(raw: dict[str, Any]) -> list[JobProblem]:
    problems = []
    for section in SECTIONS:
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            if not _is_secret_name(key) or not isinstance(value, str) or ENV_REFERENCE.search(value):
                continue
            variable = "AZURE_STORAGE_" + re.sub(r"[^A-Za-z0-9]+", "_", key).upper().removeprefix("ACCOUNT_")
            problems.append(
                JobProblem(
                    f"{section}.{key}",
                    "holds a secret written inline; keep it in an environment variable and write "
                    f'{key} = "${{{variable}}}"',
                    safe=True,
                )
            )
    return problems


def _is_secret_name(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _check_sections(resolved: dict[str, Any], command: click.Command, problems: list[JobProblem], unresolved: set[str]):
    """Check [options], [cluster] and [storage_options]; values that name an unset variable are taken unchecked."""
    from sdpipe.cluster.config import SETTINGS

    params = {key: p for key, p in _params_by_key(command).items() if p.name not in (STORAGE_PARAM, *SETTINGS)}
    ctx = click.Context(command, info_name=command.name)
    defaults: dict[str, Any] = {}

    table = resolved.get("options")
    for key, value in (table.items() if isinstance(table, dict) else ()):
        normal = _normal_key(key)
        if normal not in params:
            problems.append(JobProblem(f"options.{key}", _unknown_option(normal, params)))
            continue
        param = params[normal]
        problem = None if f"options.{key}" in unresolved else _convert(ctx, param, value)
        if problem:
            problems.append(JobProblem(f"options.{key}", problem))
            continue
        value = _toml_value(value)
        defaults[param.name] = [value] if param.multiple and not isinstance(value, list) else value

    for param in command.params:
        if getattr(param, "required", False) and param.name not in defaults:
            problems.append(JobProblem(f"options.{_public_key(param)}", "missing; this pipeline needs it"))

    cluster_table = resolved.get("cluster")
    if isinstance(cluster_table, dict):
        cluster_table = {k: v for k, v in cluster_table.items() if f"cluster.{k}" not in unresolved}
    cluster = _check_cluster(cluster_table, problems)
    storage_options = _check_storage_options(resolved.get("storage_options"), problems)
    return defaults, cluster, storage_options


def _check_cluster(table: Any, problems: list[JobProblem]) -> dict[str, Any]:
    """Check the [cluster] table with the cluster module's own rules, key by key, then as a whole."""
    from sdpipe.cluster import resolve_cluster, settings_from_job

    if not isinstance(table, dict):
        return {}
    valid: dict[str, Any] = {}
    for key, value in table.items():
        try:
            settings_from_job({key: _toml_value(value)})
        except ConfigError as exc:
            problems.append(JobProblem(f"cluster.{key}", str(exc)))
            continue
        valid[key] = _toml_value(value)
    if len(valid) == len(table):
        try:
            # No environment: the check is of the file alone.  Nothing is started or contacted here.
            resolve_cluster(None, job=valid, environ={})
        except ConfigError as exc:
            problems.append(JobProblem(_cluster_key(valid, str(exc)), str(exc)))
    return valid


def _cluster_key(table: dict[str, Any], message: str) -> str:
    """Return the key of the [cluster] table that alone makes the ``message`` mistake (workers = 0), else ``cluster``."""
    from sdpipe.cluster import resolve_cluster

    culprits = []
    for key, value in table.items():
        try:
            resolve_cluster(None, job={key: value}, environ={})
        except ConfigError as exc:
            if str(exc) == message:
                culprits.append(key)
    return f"cluster.{culprits[0]}" if len(culprits) == 1 else "cluster"


def _check_storage_options(table: Any, problems: list[JobProblem]) -> dict[str, str]:
    if not isinstance(table, dict):
        return {}
    options: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, bool):
            options[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            options[key] = str(value)
        else:
            problems.append(JobProblem(f"storage_options.{key}", f"must be a string, number or boolean, not {type(value).__name__}"))
    return options


def _params_by_key(command: click.Command) -> dict[str, click.Parameter]:
    params = {}
    for param in command.params:
        if param.name in CLI_ONLY_PARAMS or not isinstance(param, click.Option):
            continue
        params[_public_key(param)] = param
    return params


def _public_key(param: click.Parameter) -> str:
    """Return an option's job-file key: its long flag without the dashes (``group-by``)."""
    long_flags = [opt for opt in param.opts if opt.startswith("--")]
    return long_flags[0][2:] if long_flags else _normal_key(param.name or "")


def _param_key(dotted: str, command: click.Command) -> str:
    """Map a dotted job-file key (``options.group-by``) to its parameter name (``group_by``)."""
    section, _, key = dotted.partition(".")
    if section in ("options", "cluster"):
        param = _params_by_key(command).get(_normal_key(key))
        if param is not None and param.name:
            return param.name
    return dotted


def _normal_key(key: str) -> str:
    return key.strip().replace("_", "-")


def _unknown_option(key: str, params: dict[str, click.Parameter]) -> str:
    from sdpipe.cluster.config import SETTINGS

    if key.replace("-", "_") in SETTINGS:
        return "belongs in [cluster]"
    if key == "storage-option":
        return "give storage options as a [storage_options] table"
    allowed = sorted(params)
    return f"unknown option{_suggest(key, allowed)}; valid keys in [options]: {', '.join(allowed)}"


def _convert(ctx: click.Context, param: click.Parameter, value: Any) -> str | None:
    """Check a value with the option's own click type; return the problem or ``None``."""
    value = _toml_value(value)
    if getattr(param, "is_flag", False) and not isinstance(value, bool):
        return f"must be true or false, not {value!r}"
    if param.multiple and not isinstance(value, list):
        value = [value]
    if not param.multiple and isinstance(value, list):
        return f"takes one value, not a list ({value!r})"
    try:
        param.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        return exc.message.rstrip(".")
    return None


def _toml_value(value: Any) -> Any:
    """Turn TOML dates and times into the ISO text that click's types parse."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return [_toml_value(item) for item in value]
    return value


def _suggest(key: str, choices) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def job_command(job: Job) -> click.Command:
    """Return the pipeline's command with the job's values as defaults that command-line flags override."""
    from sdpipe.registry import get_pipeline

    base = get_pipeline(job.pipeline).make_command()
    command = copy.copy(base)
    command.context_settings = {**base.context_settings, "default_map": dict(job.defaults)}
    command.callback = _with_job_settings(base.callback, job, any(p.name == STORAGE_PARAM for p in base.params))
    return command


def _with_job_settings(callback, job: Job, takes_storage_options: bool):
    """Wrap a command body so that it sees the job's cluster table and storage options.

    The job's storage options come before the command line's, so that a
    ``--storage-option`` flag wins key by key.
    """
    from_file = tuple(f"{key}={value}" for key, value in job.storage_options.items())

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().meta[JOB_CLUSTER_KEY] = dict(job.cluster)
        if takes_storage_options:
            kwargs[STORAGE_PARAM] = from_file + tuple(kwargs.get(STORAGE_PARAM) or ())
        return callback(*args, **kwargs)

    return wrapper
