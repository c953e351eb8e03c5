"""Alerts: what is told to a person, when, and through which channel (README *Alerts*).

- ``notifier``: the Airflow notifiers the DAGs carry as task callbacks (import-light: DAG parse);
- ``task_events``: a task failed after its last attempt, or ran through (on the worker);
- ``watchdog``: the checks on their own schedule: a stalled invoice export, invoices waiting too
  long, the daily digest; each condition is told once, and once more when it clears;
- ``items``: the failing keys and invoices of the state store, as one message lists them;
- ``advice``: what to do, per kind of failure (the operations guide's troubleshooting rows);
- ``compose``: the message (subject, text and HTML); ``channels``: e-mail through providers-smtp's
  SmtpNotifier, Slack or Teams through an HTTP connection's incoming webhook.

What is open, and when the export last ran through, is kept in the state store
(``king_qics.state.alerts``). No secret is ever part of a message: every text goes through
Airflow's secrets masker, and only reasons the package itself wrote are quoted.
"""
