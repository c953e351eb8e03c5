"""How long an invoice's claim holds without renewal: derived from the hooks' worst case, so that a
run that is still alive always renews in time, and refused when that would outlive a task."""

from __future__ import annotations

from datetime import timedelta

from king_qics.errors import ConfigurationError

# The claim lives through at most this many of the hooks' worst-case calls between two renewals
# (a step: look-ups, a post, a read-back), plus one for the margin.
CALLS_PER_RENEWAL = 3
MAX_CLAIM_LEASE = timedelta(hours=2)  # the tasks' execution_timeout: no claim may outlive a task


def claim_lease(king, qics) -> timedelta:
    """How long a claim holds without being renewed: a live run renews it before every step, and a
    step makes at most ``CALLS_PER_RENEWAL`` calls of the hooks' worst case (every attempt, every
    timeout, every wait). Raises ConfigurationError when that outgrows ``MAX_CLAIM_LEASE``."""
    worst = max(hook.worst_case_seconds() for hook in (king, qics) if hook is not None)
    lease = timedelta(seconds=(CALLS_PER_RENEWAL + 1) * worst)
    if lease > MAX_CLAIM_LEASE:
        slowest = max((h for h in (king, qics) if h is not None), key=lambda h: h.worst_case_seconds())
        raise ConfigurationError(
            f"one call of connection {slowest.conn_id!r} may take up to {worst:.0f} s "
            f"({slowest.max_attempts} attempts of up to {slowest.attempt_deadline:.0f} s), so an invoice's "
            f"claim would have to hold {lease}, longer than {MAX_CLAIM_LEASE}: lower the connection's "
            "timeout or max_attempts"
        )
    return lease
