"""The batch spec: file naming, and per file type the rules a file must follow.

A spec is a TOML file (see ``default_spec.toml`` beside this module, and
docs/batch-validation.md).  :func:`load_spec` reads and checks it once;
everything after that works on the frozen :class:`BatchSpec`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from sdpipe.errors import ConfigError

DEFAULT_SPEC_NAME = "default_spec.toml"

QUOTING_CHOICES = ("all", "any")
BOM_CHOICES = ("optional", "required", "forbidden")
DTYPE_CHOICES = ("str", "int", "float", "bool", "date", "datetime")
COLUMN_CHECKS = ("dtype", "nullable", "unique", "min", "max", "isin", "regex", "min_length", "max_length")

# Date and time tokens of the naming pattern: regular expression and strptime format.
TIME_TOKENS = {
    "yyyyMMdd": (r"\d{8}", "%Y%m%d"),
    "yyyy-MM-dd": (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
    "HHmm": (r"\d{4}", "%H%M"),
    "HHmmss": (r"\d{6}", "%H%M%S"),
}
NAME_TOKENS = ("customer", "type")
TYPE_KEYS = {"required", "columns", "names", "header", "quoting", "encoding", "bom", "delimiter", "schema"}
DEFAULT_KEYS = {"header", "quoting", "encoding", "bom", "delimiter", "max_errors_per_file"}


@dataclass(frozen=True)
class FileName:
    """The parts of a file name that matched the naming pattern."""

    name: str
    batch: str
    customer: str
    file_type: str
    batch_time: str | None


class NamingPattern:
    """A file-name template such as ``{customer}_{yyyyMMdd}_{HHmm}_{type}.csv``."""

    def __init__(self, pattern: str, batch: str):
        self.pattern = pattern
        self.batch = batch
        self.tokens = _template_tokens(pattern, "naming.pattern")
        for required in NAME_TOKENS:
            if required not in self.tokens:
                raise ConfigError(f"naming.pattern {pattern!r} has no {{{required}}} placeholder; add one")
        batch_tokens = _template_tokens(batch, "naming.batch")
        unknown = [t for t in batch_tokens if t not in self.tokens or t == "type"]
        if unknown:
            raise ConfigError(
                f"naming.batch {batch!r} uses {{{unknown[0]}}}, which naming.pattern {pattern!r} "
                "does not provide (or is {type}); use placeholders of the pattern other than {type}"
            )
        self.regex = re.compile(_template_regex(pattern))

    def parse(self, name: str) -> FileName | str:
        """Return the parts of ``name``, or the reason why it does not match as a string."""
        match = self.regex.fullmatch(name)
        if match is None:
            return f"name does not match the pattern {self.pattern!r}"
        values = {token: match.group(_group(token)) for token in self.tokens}

        moment: dict[str, str] = {}
        for token in self.tokens:
            if token in TIME_TOKENS:
                try:
                    dt.datetime.strptime(values[token], TIME_TOKENS[token][1])
                except ValueError:
                    return f"{values[token]!r} is not a valid {token} date or time"
                moment[token] = values[token]

        batch = self.batch
        for token, value in values.items():
            batch = batch.replace("{" + token + "}", value)
        return FileName(
            name=name,
            batch=batch,
            customer=values["customer"],
            file_type=values["type"],
            batch_time=_batch_time(moment),
        )


def _template_tokens(template: str, key: str) -> list[str]:
    tokens = re.findall(r"\{([^{}]*)\}", template)
    for token in tokens:
        if token not in NAME_TOKENS and token not in TIME_TOKENS:
            known = ", ".join("{" + t + "}" for t in (*NAME_TOKENS, *TIME_TOKENS))
            raise ConfigError(f"{key} {template!r} has an unknown placeholder {{{token}}}; known: {known}")
    if len(set(tokens)) != len(tokens):
        raise ConfigError(f"{key} {template!r} repeats a placeholder; use each one once")
    return tokens


def _group(token: str) -> str:
    return "t_" + re.sub(r"\W", "_", token)


def _template_regex(template: str) -> str:
    parts = []
    for literal, token in re.findall(r"([^{}]*)(?:\{([^{}]*)\})?", template):
        parts.append(re.escape(literal))
        if token in TIME_TOKENS:
            parts.append(f"(?P<{_group(token)}>{TIME_TOKENS[token][0]})")
        elif token:
            # Non-greedy, so that "a_b_20171010_1112_type1.csv" gives customer "a_b".
            parts.append(f"(?P<{_group(token)}>[^/]+?)")
    return "".join(parts)


def _batch_time(values: dict[str, str]) -> str | None:
    """Return the batch time as ISO 8601 text from the date and time tokens found."""
    day = values.get("yyyyMMdd") or values.get("yyyy-MM-dd", "").replace("-", "")
    if not day:
        return None
    clock = values.get("HHmmss") or values.get("HHmm")
    text = f"{day[:4]}-{day[4:6]}-{day[6:8]}"
    if clock:
        text += f"T{clock[:2]}:{clock[2:4]}" + (f":{clock[4:6]}" if len(clock) == 6 else "")
    return text


@dataclass(frozen=True)
class ColumnRule:
    """Optional pandera checks on one column, by name; ``None`` skips a check."""

    name: str
    dtype: str = "str"
    nullable: bool = True
    unique: bool = False
    min: Any = None
    max: Any = None
    isin: tuple | None = None
    regex: str | None = None
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class TypeSpec:
    """The rules of one file type."""

    name: str
    required: bool
    columns: int
    names: tuple[str, ...] = ()
    header: bool = False
    quoting: str = "all"
    encoding: str = "utf-8"
    bom: str = "optional"
    delimiter: str = ","
    schema: tuple[ColumnRule, ...] = ()

    def column_names(self) -> tuple[str, ...]:
        """Return the column names: ``names`` if given, else ``column_1`` to ``column_N``."""
        return self.names or tuple(f"column_{i}" for i in range(1, self.columns + 1))


@dataclass(frozen=True)
class BatchSpec:
    """A whole batch spec: naming, file types and the per-file cap on listed errors."""

    naming: NamingPattern
    types: dict[str, TypeSpec] = field(default_factory=dict)
    max_errors_per_file: int = 100
    source: str = DEFAULT_SPEC_NAME

    @property
    def required_types(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.types.items() if spec.required)


def load_spec(path: str | None = None) -> BatchSpec:
    """Read and check a spec file; ``None`` loads the default spec shipped with sdpipe."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_SPEC_NAME).read_text(encoding="utf-8")
        source = DEFAULT_SPEC_NAME
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(f"cannot read the spec file {path!r}: {exc.strerror or exc}") from exc
        source = path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"spec file {source!r} is not valid TOML: {exc}") from exc
    return parse_spec(data, source)


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> BatchSpec:
    """Build a :class:`BatchSpec` from the parsed TOML document."""
    unknown = set(data) - {"naming", "defaults", "types"}
    if unknown:
        raise ConfigError(f"spec {source!r}: unknown table {sorted(unknown)[0]!r}; known: naming, defaults, types")
    naming = data.get("naming", {})
    pattern = NamingPattern(
        naming.get("pattern", "{customer}_{yyyyMMdd}_{HHmm}_{type}.csv"),
        naming.get("batch", "{customer}_{yyyyMMdd}_{HHmm}"),
    )

    defaults = data.get("defaults", {})
    _reject_unknown(defaults, DEFAULT_KEYS, f"spec {source!r} [defaults]")
    max_errors = defaults.get("max_errors_per_file", 100)
    if not isinstance(max_errors, int) or isinstance(max_errors, bool) or max_errors < 1:
        raise ConfigError(f"spec {source!r}: max_errors_per_file {max_errors!r} is invalid; give a whole number >= 1")

    types_table = data.get("types", {})
    if not types_table:
        raise ConfigError(f"spec {source!r} defines no file type; add a [types.NAME] table")
    types = {name: _parse_type(name, table, defaults, source) for name, table in types_table.items()}
    if not any(t.required for t in types.values()):
        raise ConfigError(f"spec {source!r}: no file type is required, so no batch could ever be complete")
    return BatchSpec(naming=pattern, types=types, max_errors_per_file=max_errors, source=source)


def _reject_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")


def _parse_type(name: str, table: dict[str, Any], defaults: dict[str, Any], source: str) -> TypeSpec:
    where = f"spec {source!r} [types.{name}]"
    _reject_unknown(table, TYPE_KEYS, where)
    merged = {**{k: v for k, v in defaults.items() if k != "max_errors_per_file"}, **table}

    columns = merged.get("columns")
    if not isinstance(columns, int) or isinstance(columns, bool) or columns < 1:
        raise ConfigError(f"{where}: columns {columns!r} is invalid; give the number of columns (>= 1)")
    names = tuple(merged.get("names", ()))
    if names and len(names) != columns:
        raise ConfigError(f"{where}: names has {len(names)} entries but columns is {columns}; make them agree")
    quoting = merged.get("quoting", "all")
    if quoting not in QUOTING_CHOICES:
        raise ConfigError(f"{where}: quoting {quoting!r} is invalid; choose one of {', '.join(QUOTING_CHOICES)}")
    bom = merged.get("bom", "optional")
    if bom not in BOM_CHOICES:
        raise ConfigError(f"{where}: bom {bom!r} is invalid; choose one of {', '.join(BOM_CHOICES)}")
    delimiter = merged.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ConfigError(f"{where}: delimiter {delimiter!r} is invalid; give one character other than a quote or newline")

    spec = TypeSpec(
        name=name,
        required=bool(merged.get("required", True)),
        columns=columns,
        names=names,
        header=bool(merged.get("header", False)),
        quoting=quoting,
        encoding=_check_encoding(merged.get("encoding", "utf-8"), where),
        bom=bom,
        delimiter=delimiter,
    )
    rules = tuple(_parse_rule(column, rule, spec, where) for column, rule in merged.get("schema", {}).items())
    return TypeSpec(**{**spec.__dict__, "schema": rules})


def _check_encoding(encoding: str, where: str) -> str:
    """Accept codecs in which CR, LF, comma and quote are single ASCII bytes."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError) as exc:
        raise ConfigError(f"{where}: encoding {encoding!r} is not known to Python; give e.g. 'utf-8' or 'cp1252'") from exc
    if info.name.startswith(("utf-16", "utf-32")) or "\r\n,\"".encode(info.name, errors="replace") != b'\r\n,"':
        raise ConfigError(
            f"{where}: encoding {encoding!r} is not supported; the checker reads encodings in which "
            "newlines, commas and quotes are single ASCII bytes (utf-8, latin-1, cp1252, cp949, ...)"
        )
    return "utf-8" if info.name == "utf-8-sig" else info.name


def _parse_rule(column: str, rule: dict[str, Any], spec: TypeSpec, where: str) -> ColumnRule:
    where = f"{where} schema.{column}"
    if not spec.header and column not in spec.column_names():
        raise ConfigError(
            f"{where}: no column {column!r}; name the columns with names = [...] or use column_1 to column_{spec.columns}"
        )
    if not isinstance(rule, dict):
        raise ConfigError(f"{where}: give a table of checks, e.g. {{dtype = \"int\", min = 0}}")
    _reject_unknown(rule, set(COLUMN_CHECKS), where)
    dtype = rule.get("dtype", "str")
    if dtype not in DTYPE_CHOICES:
        raise ConfigError(f"{where}: dtype {dtype!r} is invalid; choose one of {', '.join(DTYPE_CHOICES)}")
    isin = rule.get("isin")
    if isin is not None and not isinstance(isin, list):
        raise ConfigError(f"{where}: isin {isin!r} is invalid; give a list of allowed values")
    regex = rule.get("regex")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{where}: regex {regex!r} is invalid: {exc}") from exc
    return ColumnRule(
        name=column,
        dtype=dtype,
        nullable=bool(rule.get("nullable", True)),
        unique=bool(rule.get("unique", False)),
        min=rule.get("min"),
        max=rule.get("max"),
        isin=tuple(isin) if isin is not None else None,
        regex=regex,
        min_length=rule.get("min_length"),
        max_length=rule.get("max_length"),
    )
