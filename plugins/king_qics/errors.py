"""Typed errors shared by both hooks and both sync flows.

Every failure of the King or Qics API becomes one of these, so tasks can decide what to retry:
authentication and validation errors are final (retrying cannot help), transient ones are retried
with backoff, and an unknown outcome of a write is resolved by looking the record up before any
second attempt. Messages never contain credentials or session ids.
"""


class KingQicsError(Exception):
    """Base class of every error this package raises on purpose."""


class AuthenticationError(KingQicsError):
    """Credentials were refused (wrong partner key, environment code, revoked refresh token)."""


class RecordValidationError(KingQicsError):
    """The service rejected one record; retrying the same data gives the same answer."""

    def __init__(self, key: object, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key not in (None, "") else message)


class TransientError(KingQicsError):
    """A fault that may pass: connection failure, timeout, HTTP 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class OutcomeUnknownError(TransientError):
    """A write was sent but no answer came back: it may or may not have been applied.

    Never resend such a write blindly; look the record up first.
    """


class SessionExpiredError(TransientError):
    """King's session ended (idle timeout); the hook logs in again and repeats the call."""


class ConfigurationError(KingQicsError):
    """The configuration cannot work as it is (e.g. two entries booking into the same books, or a
    connection whose calls can outlive an invoice's claim); a person must change it."""


class ProtocolError(KingQicsError):
    """The service answered with something that is not the documented format."""


class RecordsNotSynced(SystemExit):
    """Some records (or invoices) of a task were rejected: a data error, already logged as a table
    of key + reason. Raised to end the task failed without an Airflow traceback: Airflow's task
    runner reports a SystemExit as one line ("Task exited"), where any other exception gets a
    traceback that says nothing about the data. The DAGs' retry policy fails it at once: retrying
    the same data gives the same answer (the next run, or clearing the task, retries the records).
    A SystemExit, so code that calls a task function outside Airflow must expect one."""

    def __init__(self, summary: str):
        self.summary = summary
        super().__init__(1)

    def __str__(self) -> str:
        return self.summary
