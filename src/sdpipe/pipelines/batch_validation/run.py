"""Running batch-validation: listing, planning, checks on Dask, routing and reports."""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig, compute
from sdpipe.errors import (
    EXIT_FAILURE,
    EXIT_VERDICT,
    ConfigError,
    NoInputError,
    StorageError,
)
from sdpipe.io.files import filesystem_for
from sdpipe.io.storage import resolve_for_urls
from sdpipe.locking import output_lock
from sdpipe.pipeline import STATUS_VERDICT_FAILED, RunReport
from sdpipe.pipelines.batch_validation import routing
from sdpipe.pipelines.batch_validation.batches import Batch, Listing, plan_batches
from sdpipe.pipelines.batch_validation.checks import FileCheck
from sdpipe.pipelines.batch_validation.reports import (
    RESULT_COLUMNS,
    batch_entry,
    batch_text,
    iso_time,
    summary_lines,
)
from sdpipe.pipelines.batch_validation.spec import BatchSpec, load_spec
from sdpipe.pipelines.batch_validation.tasks import check_file

logger = logging.getLogger(__name__)

PIPELINE_NAME = "batch-validation"
STATUSES = ("valid", "invalid", "error", "incomplete", "stale", "late")


@dataclass(frozen=True)
class BatchValidationOptions:
    """Every option of one batch-validation run, resolved and checked.

    ``output`` defaults to the parent of ``inbound``; ``stale_after`` is in
    seconds; ``max_errors_per_file`` overrides the spec's cap; ``now``
    (epoch seconds) replaces the clock, for tests.
    """

    inbound: str
    output: str | None = None
    spec: str | None = None
    dry_run: bool = False
    stale_after: float | None = None
    fail_on_invalid: bool = False
    max_errors_per_file: int | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    now: float | None = None

    def __post_init__(self) -> None:
        if not self.inbound:
            raise ConfigError("no inbound folder given; pass --input URL of the folder customers drop files into")
        if self.stale_after is not None and not self.stale_after > 0:
            raise ConfigError(f"invalid stale_after {self.stale_after!r}; give a duration above 0")
        if self.max_errors_per_file is not None and self.max_errors_per_file < 1:
            raise ConfigError(f"invalid max_errors_per_file {self.max_errors_per_file!r}; give a whole number >= 1")

    def describe(self) -> dict[str, Any]:
        """Return the parameters for reports, without storage options (they may hold secrets)."""
        return {
            "inbound": self.inbound,
            "output": self.output,
            "spec": self.spec,
            "dry_run": self.dry_run,
            "stale_after_seconds": self.stale_after,
            "fail_on_invalid": self.fail_on_invalid,
            "max_errors_per_file": self.max_errors_per_file,
        }


@dataclass
class _Places:
    """The filesystem and the paths of the inbound folder and the output root."""

    fs: Any
    inbound: str
    root: str
    root_url: str


def run(options: BatchValidationOptions, cluster: ClusterConfig | None = None) -> RunReport:
    """Check every complete batch of the inbound folder and route it, unless ``dry_run``.

    The run holds the lock on the folder it routes to (see :func:`routing_root`),
    so a second run on the same drop exits with ``LockHeldError``.
    """
    storage_options = resolve_for_urls([options.inbound, options.output], options.storage_options)
    options = replace(options, storage_options=storage_options)
    with output_lock(routing_root(options.inbound, options.output), options.storage_options):
        return _run(options, cluster)


def routing_root(inbound: str, output: str | None) -> str:
    """Return the output a run routes to, and so locks: ``output``, or the parent folder of ``inbound``."""
    if output:
        return output
    stripped = inbound.rstrip("/")
    protocol, separator, path = stripped.partition("://")
    if separator:
        # An inbound folder at the root of a container routes within that container.
        return stripped.rsplit("/", 1)[0] if "/" in path else stripped
    return os.path.dirname(os.path.abspath(stripped))


def _run(options: BatchValidationOptions, cluster: ClusterConfig | None) -> RunReport:
    spec = load_spec(options.spec)
    places = _places(options)
    now = options.now if options.now is not None else time.time()
    routing_errors: list[str] = []

    resumed = [] if options.dry_run else _finish_interrupted(places, routing_errors)
    pending = routing.interrupted_journals(places.fs, places.root) if options.dry_run else []
    listings = _list_inbound(places)
    history = routing.previous_attempts(places.fs, places.root)
    batches, unmatched = plan_batches(listings, spec, history, now, options.stale_after)
    logger.info("batch-validation: %d files, %d batches, %d unmatched", len(listings), len(batches), len(unmatched))

    complete = [b for b in batches if b.status == "complete"]
    checks = _check_files(complete, spec, places, options, cluster)

    result = []
    for batch in batches:
        if batch.status != "complete":
            result.append(batch_entry(batch, batch.status))
            continue
        entry = _checked_entry(batch, checks[batch.batch])
        if not options.dry_run and entry["status"] in ("valid", "invalid"):
            _route(places, batch, entry, routing_errors)
        result.append(entry)

    report = _report(options, places, listings, result, unmatched, resumed, pending, routing_errors)
    if not options.dry_run:
        _write_run_summary(places, report, routed=any(e["routed"] for e in result) or bool(resumed or routing_errors))
    return report


def _places(options: BatchValidationOptions) -> _Places:
    fs, inbound = filesystem_for(options.inbound, options.storage_options)
    inbound = inbound.rstrip("/")
    if not fs.isdir(inbound):
        raise NoInputError(f"inbound folder {options.inbound!r} not found; pass --input URL of an existing folder")
    if options.output:
        out_fs, root = filesystem_for(options.output, options.storage_options)
        if type(out_fs) is not type(fs):
            raise ConfigError(
                f"--output {options.output!r} is on another storage than --input {options.inbound!r}; "
                "routing moves files within one storage, so give an output on the same one"
            )
        root_url = options.output.rstrip("/")
    else:
        root = posixpath.dirname(inbound)
        root_url = options.inbound.rstrip("/").rsplit("/", 1)[0]
    return _Places(fs=fs, inbound=inbound, root=root.rstrip("/"), root_url=root_url)


def _finish_interrupted(places: _Places, routing_errors: list[str]) -> list[str]:
    resumed = []
    for journal in routing.interrupted_journals(places.fs, places.root):
        try:
            finished = routing.finish_interrupted(places.fs, journal)
        except StorageError as exc:
            logger.error("could not finish the routing of %s: %s", journal, exc)
            routing_errors.append(str(exc))
            continue
        resumed.append(finished["folder"])
    return resumed


def _list_inbound(places: _Places) -> list[Listing]:
    listings = []
    for info in places.fs.ls(places.inbound, detail=True):
        if info.get("type") != "file":
            continue
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        listings.append(Listing(name=name, path=info["name"], size=int(info.get("size") or 0), modified=_mtime(info)))
    return sorted(listings, key=lambda item: item.name)


def _mtime(info: dict[str, Any]) -> float:
    value = info.get("mtime") or info.get("last_modified") or info.get("LastModified") or info.get("created")
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "timestamp"):
        return value.timestamp()
    if isinstance(value, str):
        return pd.Timestamp(value).timestamp()
    return time.time()


def _check_files(batches: list[Batch], spec: BatchSpec, places: _Places, options: BatchValidationOptions,
                 cluster: ClusterConfig | None) -> dict[str, list[FileCheck]]:
    from dask import delayed

    cap = options.max_errors_per_file or spec.max_errors_per_file
    tasks = []
    for batch in batches:
        for file_type, listing in batch.files.items():
            task = delayed(check_file, pure=False)(
                listing.path, listing.name, spec.types[file_type], options.storage_options, cap, options.inbound,
                dask_key_name=f"check-{listing.name}",
            )
            tasks.append((batch.batch, task))
    if not tasks:
        return {}
    values = compute(*[task for _, task in tasks], cluster=cluster)
    checks: dict[str, list[FileCheck]] = {b.batch: [] for b in batches}
    for (batch_name, _), check in zip(tasks, values):
        checks[batch_name].append(check)
    return checks


def _checked_entry(batch: Batch, checks: list[FileCheck]) -> dict[str, Any]:
    if any(c.read_error for c in checks):
        status = "error"
    else:
        status = "valid" if all(c.valid for c in checks) else "invalid"
    return batch_entry(batch, status, checks)


def _route(places: _Places, batch: Batch, entry: dict[str, Any], routing_errors: list[str]) -> None:
    area = entry["status"]
    folder = routing.attempt_folder(places.root, area, batch.batch, batch.attempt)
    entry["destination"] = routing.attempt_folder(places.root_url, area, batch.batch, batch.attempt)
    entry["routed"] = True
    files = [{"name": c["file"], "size": c["size"], "sha256": c["sha256"]} for c in entry["file_checks"]]
    try:
        routing.route_batch(places.fs, places.inbound, folder, files, entry, batch_text(entry))
    except (StorageError, OSError) as exc:
        entry["routed"] = False
        entry["routing_error"] = str(exc)
        routing_errors.append(f"{batch.batch}: {exc}")
        logger.error("routing batch %s to %s failed: %s", batch.batch, folder, exc)


def _report(options, places, listings, result, unmatched, resumed, pending, routing_errors) -> RunReport:
    counts: dict[str, Any] = {status: sum(1 for e in result if e["status"] == status) for status in STATUSES}
    counts.update(
        batches=len(result),
        unmatched=len(unmatched),
        files=len(listings),
        files_checked=sum(len(e["file_checks"]) for e in result),
        batches_routed=sum(1 for e in result if e["routed"]),
    )

    frame = pd.DataFrame(result, columns=RESULT_COLUMNS)
    frame["attempt"] = frame["attempt"].astype("Int64")  # null for batches not checked
    report = RunReport(
        pipeline=PIPELINE_NAME,
        status="error" if routing_errors else "ok",
        inputs=[{"url": item.path, "size": item.size, "modified": iso_time(item.modified)} for item in listings],
        counts=counts,
        output=places.root_url,
        result=frame,
    )
    report.details["unmatched"] = unmatched
    report.details["resumed_routing"] = resumed
    report.details["routing_pending"] = pending
    report.details["routing_errors"] = routing_errors
    report.details["parameters"] = options.describe()

    report.summary = summary_lines(result, unmatched, resumed, options.dry_run, options.inbound)
    for message in routing_errors:
        report.summary.append(f"  routing error: {message}")

    if routing_errors:
        report.exit_code = EXIT_FAILURE
    elif options.fail_on_invalid and counts["invalid"]:
        # Every pipeline reports exit code 3 with this status.
        report.status = STATUS_VERDICT_FAILED
        report.exit_code = EXIT_VERDICT
    return report


def _write_run_summary(places: _Places, report: RunReport, routed: bool) -> None:
    """Write ``reports/latest.json`` and ``.txt`` every run, and a dated copy when files moved."""
    document = json.dumps(report.to_dict(), indent=2, default=str).encode("utf-8")
    text = ("\n".join(report.summary) + "\n").encode("utf-8")
    folder = f"{places.root}/reports"
    places.fs.makedirs(folder, exist_ok=True)
    names = ["latest"]
    if routed:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        names.append(f"runs/{stamp}-{uuid.uuid4().hex[:8]}")
        places.fs.makedirs(f"{folder}/runs", exist_ok=True)
    for name in names:
        places.fs.pipe_file(f"{folder}/{name}.json", document)
        places.fs.pipe_file(f"{folder}/{name}.txt", text)
