"""The operator of a DAG's first task that decides whether the run has work (imported at DAG-parse
time: Airflow's standard provider only)."""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator


class IdleGate(ShortCircuitOperator):
    """A ShortCircuitOperator that also skips the teardowns after it: a falsy result means the run has
    nothing to do, so no downstream task (not even a teardown such as ``reconcile``) starts a
    process. ShortCircuitOperator itself always leaves teardowns to run."""

    def execute(self, context):
        condition = PythonOperator.execute(self, context)
        if condition:
            return condition
        self.log.info(
            "Nothing to do: skipping %s", ", ".join(sorted(self.get_flat_relative_ids(upstream=False)))
        )
        self.skip(ti=context["ti"], tasks=context["task"].get_flat_relatives(upstream=False))
        return condition
