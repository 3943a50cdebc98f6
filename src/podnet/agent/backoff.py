"""kubelet's container restart back-off: first restart at once, then 10s doubling to 5m.

The back-off for a container is forgotten once the container has run for 10 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 10.0
MAX = 300.0
RESET_AFTER = 600.0


@dataclass
class Backoff:
    current: float = 0.0  # 0: the next restart is immediate

    def next_delay(self, ran_for: float) -> float:
        """The wait before restarting a container that just ended after running `ran_for` seconds."""
        if ran_for >= RESET_AFTER:
            self.current = 0.0
        delay = self.current
        self.current = INITIAL if self.current == 0 else min(self.current * 2, MAX)
        return delay
