"""Experiments: A/B tests of recorded rule set versions, holdouts and
canary rollouts (docs/experiments.md).

    model.py     the experiments file (rules/<set>.experiments.yaml): parse and lint
    assign.py    sticky, stateless assignment of a party to an arm (SHA-256 buckets)
    router.py    the answering path's one call: which engine answers this query
    stats.py     Wilson intervals, always-valid (mSPRT) uplift, sample-ratio check
    report.py    the report per arm, from the decision log (both stores)
    actions.py   start, stop, promote, weights: the file rewritten, the history kept
"""
