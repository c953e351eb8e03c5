"""Benchmarks: calls, time and memory of a sync and DAG parse time, against the sandboxes.

``python -m bench`` (``make bench``) runs every figure at full size and writes bench/RESULTS.md;
``python -m bench --quick`` (``make bench-quick``, part of ``make test``) runs small sizes and
asserts only counts, never times.
"""
