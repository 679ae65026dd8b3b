"""When to restart a child that exited on its own, and when to stop trying.

A child that dies is restarted after an exponential backoff (``initial_s``, doubled per
failure, capped at ``max_s``), so a dependency that blinks (Redis restarting) costs one quick
restart while a crash loop does not spin the CPU. A run that lasted ``stable_after_s`` ends
the failure streak: the next death counts as the first again. ``max_failures`` short runs in
a row mean the child cannot be kept up (bad code, a port taken, a database that refuses it);
the supervisor then stops everything and exits non-zero so the operator sees it instead of a
silently flapping process. An exit code of 2 is a usage or settings error, which a restart
cannot fix, so it gives up at once. Nothing here sleeps or reads a clock: callers pass times.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.lifecycle import EXIT_USAGE


@dataclass(frozen=True)
class RestartPolicy:
    initial_s: float = 1.0
    max_s: float = 30.0
    stable_after_s: float = 60.0
    max_failures: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or self.max_failures < 1:
            raise ValueError("need 0 < initial_s <= max_s and max_failures >= 1")


@dataclass(frozen=True)
class Restart:
    """Start the child again after ``delay_s`` seconds."""

    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    """Stop restarting; ``reason`` is one line for the operator."""

    reason: str


class RestartTracker:
    """The failure streak of one child. Not thread-safe: owned by the supervisor loop."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.failures = 0

    def on_exit(self, returncode: int, ran_for_s: float) -> Restart | GiveUp:
        if returncode == EXIT_USAGE:
            return GiveUp("exited 2 (invalid option or setting); a restart cannot fix that")
        if ran_for_s >= self.policy.stable_after_s:
            self.failures = 0
        self.failures += 1
        if self.failures > self.policy.max_failures:
            return GiveUp(
                f"died {self.failures} times in a row, each within "
                f"{self.policy.stable_after_s:g}s of starting"
            )
        delay = self.policy.initial_s * 2 ** (self.failures - 1)
        return Restart(min(self.policy.max_s, delay))
