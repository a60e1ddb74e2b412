"""The statistics of an experiment report, stated with every report.

- Rates: decisions with at least one item shown / clicked / led / accepted,
  per decision of the arm (a proportion), with the 95 % Wilson score
  interval (Wilson 1927; Agresti & Coull 1998: good coverage at small counts).
- Uplift of an arm against the control: the difference of the primary
  metric's rates, with an always-valid 95 % confidence sequence and p-value
  from the mixture sequential probability ratio test (mSPRT, Johari,
  Pekelis & Walsh, "Always Valid Inference", 2017/2022) with a normal
  mixing distribution N(0, tau^2) over the difference, tau = 0.05 (an
  absolute 5-point uplift is a large one for conversion rates). The report
  may be read at any time and as often as wanted: the false positive rate
  stays at most 5 % (a fixed-horizon z-test read daily would not).
  With the estimate d and its variance s^2 = p1(1-p1)/n1 + p0(1-p0)/n0:
  Lambda = sqrt(s^2 / (s^2 + tau^2)) * exp(d^2 tau^2 / (2 s^2 (s^2 + tau^2))),
  p = min(1, 1/Lambda), and the interval is every d0 in [-1, 1] with Lambda(d - d0) < 1/alpha.
- Sample-ratio mismatch: Pearson's chi-square of the decisions per arm
  against the weights (df = arms - 1); p < 0.001 warns that assignment or
  logging is broken, and so does any decision of an arm at weight 0 (Fabijan et al., "Diagnosing Sample Ratio Mismatch", KDD 2019).
"""
from __future__ import annotations

import math

Z95 = 1.959963984540054
TAU = 0.05
ALPHA = 0.05
SRM_P = 0.001
METHOD = (f"Rates: decisions with at least one such item per decision, 95 % Wilson score interval. "
          f"Uplift: difference of the primary metric's rate against the control, with an always-valid "
          f"95 % confidence sequence and p-value (mSPRT, normal mixture N(0, {TAU}^2) over the "
          f"difference; Johari et al. 2017): valid however often the report is read. "
          f"Sample-ratio mismatch: chi-square of decisions per arm against the weights, warning at "
          f"p < {SRM_P}, or when an arm at weight 0 received decisions.")


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of successes/trials; (0, 1) when trials is 0."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def msprt_uplift(k1: int, n1: int, k0: int, n0: int, tau: float = TAU,
                 alpha: float = ALPHA) -> dict | None:
    """{"difference", "low", "high", "pValue"}: arm (k1/n1) minus control
    (k0/n0), always-valid; None when either arm has no decisions."""
    if n1 <= 0 or n0 <= 0:
        return None
    p1, p0 = k1 / n1, k0 / n0
    difference = p1 - p0
    # a rate of 0 or 1 has no variance: use the Wilson-style +1/+2 smoothing
    # for the variance only, so a holdout's 0 does not give an interval of 0 width
    q1, q0 = (k1 + 1) / (n1 + 2), (k0 + 1) / (n0 + 2)
    variance = q1 * (1 - q1) / n1 + q0 * (1 - q0) / n0
    t2 = tau * tau
    log_lambda = 0.5 * math.log(variance / (variance + t2)) + \
        difference * difference * t2 / (2 * variance * (variance + t2))
    p_value = min(1.0, math.exp(-log_lambda)) if log_lambda > 0 else 1.0
    radius = math.sqrt(max(0.0, 2 * variance * (variance + t2) / t2
                           * (math.log(1 / alpha) + 0.5 * math.log((variance + t2) / variance))))
    # a difference of two rates lies in [-1, 1]: the confidence set cut to
    # the possible values is still one (at small counts the radius exceeds it)
    return {"difference": difference, "low": max(-1.0, difference - radius),
            "high": min(1.0, difference + radius), "pValue": p_value}


def chi2_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with `df` degrees of freedom
    (the regularised upper incomplete gamma Q(df/2, x/2), by its recurrence
    over half-integers: exact for every df)."""
    if df <= 0:
        return 1.0
    if statistic <= 0:
        return 1.0
    x = statistic / 2
    if df % 2 == 0:
        term, total, a = math.exp(-x), math.exp(-x), 1.0      # Q(1, x) = e^-x
        for _ in range(df // 2 - 1):
            term *= x / a
            total += term
            a += 1
        return min(1.0, total)
    total = math.erfc(math.sqrt(x))                               # Q(1/2, x)
    term = math.sqrt(x) * math.exp(-x) / math.gamma(1.5)          # x^a e^-x / Gamma(a + 1), a = 1/2
    a = 1.5
    for _ in range((df - 1) // 2):                                # Q(a + 1) = Q(a) + x^a e^-x / Gamma(a + 1)
        total += term
        term *= x / a
        a += 1
    return min(1.0, total)


def sample_ratio(observed: list[int], weights: list[float]) -> dict:
    """{"chiSquare", "df", "pValue", "mismatch", "unexpected"} of decisions
    per arm against the weights (percent, or expected shares).

    Arms expected to get nothing (weight 0) are not terms of the
    chi-square (their expected count is 0), but one that received
    decisions anyway is the plainest mismatch there is (assignment not
    following the weights: a stale worker, a cached answer, a file edited
    by hand): `unexpected` lists their positions, and then `mismatch` is
    true and `pValue` 0 whatever the other arms' split."""
    unexpected = [i for i, (o, w) in enumerate(zip(observed, weights)) if w <= 0 and o > 0]
    pairs = [(o, w) for o, w in zip(observed, weights) if w > 0]
    total = sum(o for o, _w in pairs)
    weight_sum = sum(w for _o, w in pairs)
    if total == 0 or len(pairs) < 2:
        statistic, df, p_value = 0.0, max(0, len(pairs) - 1), 1.0
    else:
        statistic = sum((o - total * w / weight_sum) ** 2 / (total * w / weight_sum) for o, w in pairs)
        df = len(pairs) - 1
        p_value = chi2_sf(statistic, df)
    if unexpected:
        p_value = 0.0
    return {"chiSquare": statistic, "df": df, "pValue": p_value, "mismatch": p_value < SRM_P,
            "unexpected": unexpected}
