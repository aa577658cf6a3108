"""Reading users' files: texts and records, split at record boundaries only, in bounded memory.

One reader serves every command: training data (CSV, TSV, JSONL), texts to label (those, plain
text with one document per line, and Parquet) and the chunks of a streaming prediction
(`read_chunks`). Text is UTF-8, with a line that is not read as Windows-1252.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Iterator

from newstopic.errors import DataError
from newstopic.extras import require

# suffix -> CSV delimiter; None: one JSON object per line; "parquet": Apache Parquet (pyarrow)
TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None,
                 ".parquet": "parquet"}
TEXT_FORMATS = ("", ".txt", ".text")  # one document per line


class DataWarning(UserWarning):
    """Data was read, but not quite as given (for example, decoded as latin-1)."""


def iter_texts(path, text_column: str = "text") -> Iterator[str]:
    """The texts of `path` one by one, read in bounded memory (see `iter_documents`). Errors in
    the file's shape (a missing column, not a file) are raised on the first `next`."""
    path = readable_file(path, "--file")
    texts = (text for _, text in iter_documents(path, text_column))
    return _not_empty(texts, f"{path} holds no texts: give one document per line")


def iter_documents(path, text_column: str = "text", id_column: str | None = None
                   ) -> Iterator[tuple[object, str]]:
    """(id, text) of each document of `path`, in file order, read in bounded memory: a text
    column of a CSV, TSV, JSONL or Parquet file, else each non-blank line of a text file. The
    id is the value of `id_column`, else the record's 0-based position (for a text file, its
    line's: blank lines are skipped, not counted out)."""
    path = readable_file(path, "--file")
    if path.suffix.lower() not in TABLE_FORMATS:
        if path.suffix.lower() not in TEXT_FORMATS:
            raise DataError(f"unknown format '{path.suffix}' for {path}: give one document per "
                            "line in a .txt file, or a .csv, .tsv, .jsonl or .parquet table")
        if id_column is not None:
            raise DataError(f"--id-column {id_column}: {path} is plain text, one document per "
                            "line, with no columns: give a table (.csv, .tsv, .jsonl, .parquet) "
                            "or drop --id-column")
        return ((row, line) for row, line in enumerate(_text_lines(path)) if line.strip())
    columns = (text_column,) if id_column is None else (text_column, id_column)
    options = {text_column: "--text-column", id_column: "--id-column"}
    records = table_records(path, columns, option=lambda column: options[column])
    return ((row if id_column is None else record.get(id_column),
             text_value(record.get(text_column), where, text_column))
            for row, (where, record) in enumerate(records))


def read_chunks(path, text_column: str = "text", id_column: str | None = None,
                size: int = 10_000, skip: int = 0) -> Iterator[tuple[list, list[str]]]:
    """(ids, texts) of `path` (see `iter_documents`) in chunks of `size` documents, after the
    first `skip` documents: what a streaming prediction labels chunk by chunk."""
    documents = itertools.islice(iter_documents(path, text_column, id_column), skip, None)
    while chunk := list(itertools.islice(documents, size)):
        ids, texts = zip(*chunk)
        yield list(ids), list(texts)


def stream_texts(stream, where: str = "standard input") -> Iterator[str]:
    """Each non-blank line of a binary stream (standard input), read as `lines` reads."""
    texts = (line.rstrip("\r\n") for line in decoded(lines(stream, where), where)
             if line.strip())
    return _not_empty(texts, f"{where} held no text: give one document per line")


def _not_empty(iterator: Iterator[str], message: str) -> Iterator[str]:
    """`iterator` with its first item read now: a `DataError(message)` when there is none."""
    first = next(iterator, None)
    if first is None:
        raise DataError(message)
    return itertools.chain([first], iterator)


# --- reading files: split at record boundaries only, in bounded memory ----------------------

MAX_TEXT_BYTES = 1 << 20  # a longer line is cut here: a model reads its first max_len words
READ_BUFFER = 1 << 20
READ_ROWS = 4096  # Parquet rows read at a time


def lines(stream, where: str) -> Iterator[bytes]:
    """The lines of a binary stream, split at b"\\n" only (never at \\x0c, \\x85 or U+2028,
    which may occur inside a text), each with its line end. A line longer than MAX_TEXT_BYTES
    is cut there, with a warning, and the rest of it skipped without being kept."""
    number = 0
    while True:
        line = stream.readline(MAX_TEXT_BYTES)
        if not line:
            return
        number += 1
        if len(line) == MAX_TEXT_BYTES and not line.endswith(b"\n"):
            warnings.warn(f"{where}: line {number} is over {MAX_TEXT_BYTES:,} bytes; only its "
                          "first part is read", DataWarning, stacklevel=2)
            rest = stream.readline(MAX_TEXT_BYTES)
            while rest and not rest.endswith(b"\n"):
                rest = stream.readline(MAX_TEXT_BYTES)
            line += b"\n"
        yield line


def decoded(raw_lines: Iterator[bytes], where: str) -> Iterator[str]:
    """UTF-8 lines (a byte-order mark dropped); a line that is not UTF-8 is read as Windows-1252,
    with one warning for the file."""
    warned = False
    for number, line in enumerate(raw_lines, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not warned:
                warnings.warn(f"{where} is not valid UTF-8 (line {number}, byte {exc.start}); "
                              "read it as Windows-1252", DataWarning, stacklevel=3)
                warned = True
            text = line.decode("cp1252", errors="latin1-fallback")
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def _latin1_fallback(error: UnicodeDecodeError):
    """The five bytes Windows-1252 leaves undefined, read as Latin-1."""
    return chr(error.object[error.start]), error.start + 1


codecs.register_error("latin1-fallback", _latin1_fallback)


def _text_lines(path: Path) -> Iterator[str]:
    with open(path, "rb", buffering=READ_BUFFER) as stream:
        for line in decoded(lines(stream, str(path)), str(path)):
            yield line.rstrip("\r\n")


def table_records(path: Path, columns: tuple[str, ...], option=None):
    """(where, record) of each record of a CSV, TSV, JSONL or Parquet file: a row under the
    header, a JSON object on its line, or a Parquet row (only `columns`). `columns` must be
    there, else a one-line error naming the option that chooses a column: `option(column)`, by
    default --text-column for the first column and --label-column for the second."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(f"unknown format '{suffix or path.name}' for {path}: use .csv, .tsv, "
                        ".jsonl, .parquet or a folder with one subfolder per class")
    if TABLE_FORMATS[suffix] == "parquet":
        found, records = _parquet_columns(path), _parquet_records(path, columns)
    elif TABLE_FORMATS[suffix] is None:
        records = _json_records(path)
        first = next(records, None)
        if first is None:
            return iter(())
        found, records = list(first[1]), itertools.chain([first], records)
    else:
        records = _csv_records(path, TABLE_FORMATS[suffix])
        found = next(records, (None, None))[1]  # the header
        if found is None:
            return iter(())
    missing = next((column for column in columns if column not in found), None)
    if missing is not None:
        option = option or (lambda column: "--text-column" if column == columns[0]
                            else "--label-column")
        raise DataError(f"{path}: no column '{missing}'; columns found: "
                        f"{', '.join(map(str, found)) or '(none)'}; choose one with "
                        f"{option(missing)}")
    return records


def _parquet_file(path: Path):
    parquet = require("pyarrow.parquet", "parquet", f"reading {path.suffix} files")
    try:
        return parquet.ParquetFile(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and OSError, by version
        raise DataError(f"{path} is not a valid Parquet file ({exc}): check the file") from None


def _parquet_columns(path: Path) -> list[str]:
    return list(_parquet_file(path).schema_arrow.names)


def _parquet_records(path: Path, columns: tuple[str, ...]):
    """The rows of `columns`, one record batch (at most READ_ROWS rows) in memory at a time."""
    row = 0
    for batch in _parquet_file(path).iter_batches(batch_size=READ_ROWS, columns=list(columns)):
        for record in batch.to_pylist():
            row += 1
            yield f"{path}: row {row}", record


def _csv_records(path: Path, delimiter: str):
    csv.field_size_limit(MAX_TEXT_BYTES)
    kind = "TSV" if delimiter == "\t" else "CSV"
    with open(path, "rb", buffering=READ_BUFFER) as stream:
        # strict: an unterminated quote is an error, not the rest of the file in one field
        reader = csv.reader(decoded(lines(stream, str(path)), str(path)), delimiter=delimiter,
                            strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            yield None, header
            for row in reader:
                if row:
                    yield (f"{path}: row {reader.line_num}",
                           dict(zip(header, row + [None] * (len(header) - len(row)))))
        except csv.Error as exc:
            problem = ("a quoted field is not closed" if "end of data" in str(exc)
                       else str(exc))
            raise DataError(f"{path} is not valid {kind} at line {reader.line_num} ({problem}): "
                            "check its quoting") from None


def _json_records(path: Path):
    with open(path, "rb", buffering=READ_BUFFER) as stream:
        for number, line in enumerate(lines(stream, str(path)), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc}): "
                                "write one JSON object per line") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {number} is not a JSON object: write one object "
                                "per line, like {\"text\": ..., \"label\": ...}")
            yield f"{path}: line {number}", record


def text_value(value, where: str, column: str) -> str:
    """A record's text: a string, or nothing (an empty text)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: {column} is {_json_kind(value)}, not a string: give each "
                        "text as a string")
    return value


def label_value(value, where: str, column: str) -> str:
    """A record's label as text: strings stripped, numbers written one way (2 and 2.0 are both
    "2"); booleans, lists, objects and non-finite numbers refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: {column} is {_json_kind(value)}: give labels as strings "
                        "or numbers")
    if not math.isfinite(value):
        raise DataError(f"{where}: {column} is {value}, not a finite number: give a real label")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _json_kind(value) -> str:
    return {bool: "a boolean", list: "a list", dict: "an object", int: "a number",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")


def existing(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"file not found: {path}: check the path")
    return path


def readable_file(path, option: str) -> Path:
    """`path` if it is a file (or a pipe) this process can read, else a one-line error."""
    path = existing(path)
    if path.is_dir():
        raise DataError(f"{option} {path} is a directory: give a file")
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise DataError(f"{option} {path} is a device, not a file: give a file or pipe the "
                        "texts on standard input")
    if not os.access(path, os.R_OK):
        raise DataError(f"{option} {path} cannot be read (permission denied): check its "
                        "permissions")
    return path
