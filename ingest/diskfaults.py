"""A test seam at the disk edge: make the WAL's or the lake's disk "full" from outside.

End-to-end tests need a disk that fills and empties on cue, in CI too, where mounting a small
filesystem is usually not allowed. With ``TASKLAKE_TEST_FULL_DISKS`` naming a directory, the
WAL writer (``check("wal")``) and the converters (``check("lake")``) fail with ENOSPC, exactly
as a full disk makes ``write`` fail, for as long as a file of that name exists there. Unset
(always, outside tests) every check is one dictionary lookup at import and nothing after.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

ENV = "TASKLAKE_TEST_FULL_DISKS"
_DIRECTORY = os.environ.get(ENV) or None


def check(disk: str) -> None:
    """Raise ENOSPC while the test marks ``disk`` ("wal" or "lake") full."""
    if _DIRECTORY is not None and (Path(_DIRECTORY) / disk).exists():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + f" (test: {disk} disk full)")
