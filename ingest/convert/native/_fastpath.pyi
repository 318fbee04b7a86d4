"""Type stub of the C extension (ingest/convert/native/_fastpath.c)."""

from collections.abc import Callable
from typing import Any

class FastState:
    def __init__(
        self,
        *,
        resource: Callable[[bytes], Any],
        scope: Callable[[bytes], Any],
        entry: Callable[[bytes], Any],
        key: Callable[[str], Any],
        resolve: Callable[[list[bytes], bool, int], Any],
        plan: Callable[[str | None, str, int], Any],
        price: Callable[..., Any],
        exception_type: Callable[[bytes], str | None],
        columns: tuple[tuple[str, str], ...],
        model_ops: frozenset[str],
        openlit_exclusive: frozenset[str],
    ) -> None: ...
    def normalize(self, data: bytes | memoryview) -> dict[str, Any] | None: ...
    def stats(self) -> dict[str, Any]: ...
    def reset(self) -> None: ...

def count_valid_spans(data: bytes | memoryview) -> int | None: ...
