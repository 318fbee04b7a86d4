"""The check every command but ``migrate`` makes first: a lake in the old layout, or one whose
migration stopped half-way, is not served (its tables would be read or written wrong).
Cheap: a few stats of the lake's top directories."""

from __future__ import annotations

from ingest.lake.migrate.old_layout import is_old_layout
from ingest.lake.migrate.state import VERIFIED, read_state
from ingest.lake.migrate.swap import STAGING_DIR
from schemas.location import LakeLocation


def pending_migration(location: LakeLocation) -> str | None:
    """Why the lake cannot be served as it is (old layout, unfinished swap), else None."""
    if not location.local:
        return None  # the old layout was only ever local
    root = location.path
    state = read_state(LakeLocation.parse(root / STAGING_DIR))
    if state is not None and state.stage == VERIFIED:
        return f"{root}: a migration stopped half-way; run tasklake migrate again to finish it"
    if is_old_layout(root):
        return (
            f"{root} holds a lake in the old layout (before Delta tables); run"
            " tasklake migrate first (README: Migrating an existing lake)"
        )
    return None
