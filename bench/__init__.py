"""Benchmarks of the recommendation path (called on every page view): `python -m bench [--quick]`.

workload.py   seeded catalog, rule sets, customers and request bodies
engine_bench  the rules engine and the recommender in-process
http_bench    instant TMF680 POST vs a bare Flask endpoint under gunicorn, memory, reload
store_bench   TMF629 / TMF680 async creates against 1,000-100,000 stored records
report.py     results.json -> results.md and PNG plots
See BENCHMARKS.md at the repository root.
"""
