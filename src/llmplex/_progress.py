"""A tqdm progress bar for batches: done / failed / rate, updated cheaply once per finished item."""

from __future__ import annotations

from typing import Any

__all__ = ["Progress"]


class Progress:
    """``update(ok)`` per finished item; tqdm throttles the redraws itself."""

    def __init__(self, total: int, *, initial: int = 0, desc: str = "llmplex batch") -> None:
        from tqdm import tqdm

        self.failed = 0
        self._bar: Any = tqdm(total=total, initial=initial, desc=desc, unit="req", dynamic_ncols=True)

    def update(self, ok: bool) -> None:
        if not ok:
            self.failed += 1
            # only a failure changes the postfix; no forced refresh
            self._bar.set_postfix_str(f"failed={self.failed}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
