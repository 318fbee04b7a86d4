"""tasklake's own notes on a span: values the converter keeps adjusted, with what was sent.

Validation (``ingest.receive.validate``) refuses what cannot be stored at all. A value that can be
stored once adjusted is adjusted, and what was sent is kept losslessly in the row's attribute
map under a ``tasklake.`` key, so SQL sees both (``attributes['tasklake.end_time_unix_nano']
IS NOT NULL`` finds every span whose end was raised):

* ``tasklake.end_time_unix_nano`` (span attributes): the end time as sent, when it was before
  the start (or 0). The row's ``duration_ns`` is 0.
* ``tasklake.time_unix_nano`` (an event's attributes): the event time as sent, when it was past
  ``ingest.receive.validate.MAX_SPAN_TIME_NS``. The event is kept with a null ``time``.
* ``tasklake.kind``, ``tasklake.status_code`` (span attributes): the span kind or status code
  as sent, when it does not fit the int8 column (OTLP defines 0..5 and 0..2). The column is
  null.

A note replaces an attribute of the same key the emitter sent (counted in the dropped count).
"""

from __future__ import annotations

from typing import Final

from ingest.convert.routing import Entry
from schemas.attributes import INT, STRING

END_TIME_KEY: Final = "tasklake.end_time_unix_nano"
EVENT_TIME_KEY: Final = "tasklake.time_unix_nano"
KIND_KEY: Final = "tasklake.kind"
STATUS_CODE_KEY: Final = "tasklake.status_code"
_MAX_INT64: Final = (1 << 63) - 1


def fits_int8(n: int) -> bool:
    return -128 <= n <= 127


def span_notes(start: int, end: int, kind: int, status_code: int) -> list[Entry]:
    """The notes a span needs (usually none): its end before its start, a kind or a status
    code beyond int8."""
    notes: list[Entry] = []
    if end < start:
        notes.append(time_note(END_TIME_KEY, end))
    if not fits_int8(kind):
        notes.append((KIND_KEY, str(kind), INT, None))
    if not fits_int8(status_code):
        notes.append((STATUS_CODE_KEY, str(status_code), INT, None))
    return notes


def time_note(key: str, ns: int) -> Entry:
    """The attribute entry noting time ``ns`` as sent (an int; text if past int64)."""
    return key, str(ns), INT if ns <= _MAX_INT64 else STRING, None


def with_notes(ents: list[Entry], notes: list[Entry]) -> tuple[list[Entry], int]:
    """``ents`` plus ``notes`` last, and how many sent entries of their keys gave way."""
    keys = {note[0] for note in notes}
    kept = [e for e in ents if e[0] not in keys]
    return [*kept, *notes], len(ents) - len(kept)
