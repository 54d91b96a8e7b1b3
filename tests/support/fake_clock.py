"""A clock the test moves by hand, injected into circuit breakers: no test waits for a cool-down."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that advance only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
