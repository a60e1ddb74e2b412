"""Sticky assignment and the report's statistics, through the functions
every host and worker uses (app/experiments/assign.py, stats.py)."""
from __future__ import annotations

import hashlib
import math

from app.experiments.assign import arm_index, assignment_key, boundaries, bucket
from app.experiments.stats import chi2_sf, msprt_uplift, sample_ratio, wilson

KEYS = [f"party:{n}" for n in range(20000)]


def arms(weights, experiment="canary"):
    bounds = boundaries(weights)
    return [arm_index(bounds, bucket(experiment, key)) for key in KEYS]


def test_bucket_is_the_documented_sha256_and_stable():
    digest = hashlib.sha256("split\x1fparty:p1".encode()).digest()
    assert bucket("split", "party:p1") == int.from_bytes(digest[:8], "big") % 10000
    # pinned: a change of the hash would move every customer to another arm
    assert [bucket("split", f"party:p{n}") for n in range(3)] == [7895, 545, 3894]


def test_canary_5_25_100_only_moves_people_into_the_canary():
    five, twenty_five, hundred = arms([5, 95]), arms([25, 75]), arms([100, 0])
    in5 = {k for k, a in zip(KEYS, five) if a == 0}
    in25 = {k for k, a in zip(KEYS, twenty_five) if a == 0}
    in100 = {k for k, a in zip(KEYS, hundred) if a == 0}
    assert in5 <= in25 <= in100 == set(KEYS)
    # the people moved are exactly those whose bucket lies between the boundaries
    moved = in25 - in5
    assert moved == {k for k in KEYS if 500 <= bucket("canary", k) < 2500}
    # and about the share the weights say (binomial, 99.9 %)
    n, p = len(KEYS), 0.20
    assert abs(len(moved) - n * p) < 3.29 * math.sqrt(n * p * (1 - p))


def test_weight_change_of_three_arms_moves_only_the_band_between_boundaries():
    before, after = arms([10, 45, 45], "x"), arms([20, 40, 40], "x")
    changed = [k for k, a, b in zip(KEYS, before, after) if a != b]
    # [0,1000) [1000,5500) [5500,10000) -> [0,2000) [2000,6000) [6000,10000)
    assert all(1000 <= bucket("x", k) < 2000 or 5500 <= bucket("x", k) < 6000 for k in changed)


def test_zero_weight_arm_gets_nobody_and_boundaries_end_at_10000():
    assert boundaries([50, 0, 50]) == [5000, 5000, 10000]
    assert 1 not in arms([50, 0, 50])
    assert boundaries([33.33, 33.33, 33.34]) == [3333, 6666, 10000]


def test_assignment_key_party_then_cart_then_none():
    assert assignment_key({"relatedParty": {"id": "p"}, "shoppingCart": [{"id": "c"}]}) == "party:p"
    assert assignment_key({"relatedParty": [{"id": "p"}]}) == "party:p"
    assert assignment_key({"shoppingCart": [{"id": "c"}]}) == "cart:c"
    assert assignment_key({"shoppingCart": {"id": "c"}}) == "cart:c"
    assert assignment_key({"channel": [{"id": "web"}]}) is None


def test_wilson_matches_published_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605
    assert [round(x, 4) for x in wilson(81, 263)] == [0.2553, 0.3662]
    assert [round(x, 4) for x in wilson(15, 148)] == [0.0624, 0.1605]
    assert wilson(0, 0) == (0.0, 1.0)


def test_chi_square_tail_matches_tables():
    assert math.isclose(chi2_sf(3.841459, 1), 0.05, rel_tol=1e-5)
    assert math.isclose(chi2_sf(10.827566, 1), 0.001, rel_tol=1e-5)
    assert math.isclose(chi2_sf(5.991465, 2), 0.05, rel_tol=1e-5)
    assert math.isclose(chi2_sf(16.266236, 3), 0.001, rel_tol=1e-5)
    assert math.isclose(chi2_sf(11.070498, 5), 0.05, rel_tol=1e-5)


def test_sample_ratio_mismatch_warns_only_when_off():
    assert not sample_ratio([1010, 990], [50, 50])["mismatch"]
    assert sample_ratio([1100, 900], [50, 50])["mismatch"]            # p ~ 7.7e-6
    assert not sample_ratio([95, 905], [10, 90])["mismatch"]
    assert sample_ratio([500, 0, 500], [50, 0, 50])["df"] == 1          # a 0 % arm is left out


def test_msprt_is_wider_than_a_fixed_horizon_test_and_finds_a_real_uplift():
    found = msprt_uplift(120, 1000, 100, 1000)
    z_half = 1.96 * math.sqrt(0.12 * 0.88 / 1000 + 0.1 * 0.9 / 1000)
    assert found["high"] - found["low"] > 2 * z_half            # the price of reading it any time
    assert found["pValue"] > 0.05                                # 12 % vs 10 % at 1,000 each: not yet
    large = msprt_uplift(1200, 10000, 1000, 10000)
    assert large["pValue"] < 0.05 and large["low"] > 0
    assert msprt_uplift(0, 0, 5, 10) is None
