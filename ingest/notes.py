"""tasklake's own notes on a span: values the converter keeps adjusted, with what was sent.

Validation (``ingest.validate``) refuses what cannot be stored at all. A value that can be
stored once adjusted is adjusted, and what was sent is kept losslessly in the row's attribute
map under a ``tasklake.`` key, so SQL sees both (``attributes['tasklake.end_time_unix_nano']
IS NOT NULL`` finds every span whose end was raised):

* ``tasklake.end_time_unix_nano`` (span attributes): the end time as sent, when it was before
  the start (or 0). The row's ``duration_ns`` is 0.
* ``tasklake.time_unix_nano`` (an event's attributes): the event time as sent, when it was past
  ``ingest.validate.MAX_SPAN_TIME_NS``. The event is kept with a null ``time``.

A note replaces an attribute of the same key the emitter sent (counted in the dropped count).
"""

from __future__ import annotations

from typing import Final

from ingest.routing import Entry
from schemas.attributes import INT, STRING

END_TIME_KEY: Final = "tasklake.end_time_unix_nano"
EVENT_TIME_KEY: Final = "tasklake.time_unix_nano"
_MAX_INT64: Final = (1 << 63) - 1


def time_note(key: str, ns: int) -> Entry:
    """The attribute entry noting time ``ns`` as sent (an int; text if past int64)."""
    return key, str(ns), INT if ns <= _MAX_INT64 else STRING, None


def with_note(ents: list[Entry], note: Entry) -> tuple[list[Entry], int]:
    """``ents`` plus ``note`` last, and how many sent entries of its key gave way (0 or 1)."""
    kept = [e for e in ents if e[0] != note[0]]
    return [*kept, note], len(ents) - len(kept)
