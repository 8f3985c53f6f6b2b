"""Command-line arguments checked before any work starts: files and times.

A command given a missing file, a folder, an empty file or a binary one says so in one line
(`leadscore: PATH: what is wrong`) and exits 2, instead of a traceback or an empty result
that looks like success.
"""

from __future__ import annotations

import argparse
import codecs
from datetime import datetime
from pathlib import Path

from leadscore.events import check_time

#: How much of a file is read to tell text from binary.
_SAMPLE_BYTES = 65_536


class InputFileError(ValueError):
    """A file a command cannot use; the message is the one line to print."""


def check_text_file(path: Path) -> None:
    """Raise `InputFileError` unless `path` is a readable, non-empty UTF-8 text file."""
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder; give a file")
    try:
        with path.open("rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except OSError as error:
        raise InputFileError(f"{path}: cannot be read: {error.strerror}") from None
    if not sample.strip():
        raise InputFileError(f"{path}: is empty")
    try:  # an incremental decoder: a character cut at the sample's end is not an error
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: is not UTF-8 text (a binary file?)") from None
    if b"\0" in sample:
        raise InputFileError(f"{path}: is not text: it holds NUL bytes (a binary file?)")


def check_output_file(path: Path) -> None:
    """Raise `InputFileError` unless a file can be written at `path`."""
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder; give a file name to write")
    if not path.parent.is_dir():
        raise InputFileError(f"{path}: the folder {path.parent} does not exist")


def aware_time(text: str) -> datetime:
    """An argparse type: an ISO-8601 time with a zone, within the times leadscore accepts."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or +01:00")
    try:
        return check_time(moment)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
