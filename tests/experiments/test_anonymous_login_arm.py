"""An anonymous shopper who logs in can change arms (docs/experiments.md,
"Anonymous shoppers who log in"), over HTTP on both stores: assignment is
stateless, so before login the cart id is the key and after it the party
id, which may fall in another arm; each key stays sticky. What a product
manager can do about it, as documented: the experiment's `channels` keep
it to the channels where shoppers are logged in (an anonymous query on
another channel is in no experiment); a query with neither a party nor a
shopping cart is in no experiment."""
from __future__ import annotations

import pytest

from experiment_project import R, query
from helpers import Client

from app.experiments.assign import bucket


def arm_of(api, body) -> str | None:
    response = api.post(R, json=body)
    assert response.status_code == 200, response.text
    return (response.json().get("experiment") or {}).get("arm")


def expected_arm(key: str) -> str:
    """The split's arms in file order: challenger [0, 5000), control [5000, 10000)."""
    return "challenger" if bucket("split", key) < 5000 else "control"


@pytest.mark.xdist_group("experiments-to-read")
def test_an_anonymous_shopper_who_logs_in_gets_the_arm_of_the_party(experiments_to_read):
    # the shared experiment server (tests/experiments/conftest.py): it only asks
    api = Client(experiments_to_read.url)
    cart = next(f"cart-{n}" for n in range(200) if expected_arm(f"cart:cart-{n}") == "control")
    party = next(f"p-{n}" for n in range(200) if expected_arm(f"party:p-{n}") == "challenger")

    anonymous = query(None, cart_id=cart)
    assert {arm_of(api, anonymous) for _ in range(5)} == {"control"}          # sticky by the cart id
    logged_in = query(party, cart_id=cart)                                      # the same cart, now with her id
    assert {arm_of(api, logged_in) for _ in range(5)} == {"challenger"}       # the party id's arm from now on

    # channels: the split runs on "21" only, so an anonymous query on another channel is in none
    assert arm_of(api, query(None, channel="99", cart_id=cart)) is None
    # no party and no cart (a cart always has its id: the schema requires it): in no experiment
    no_key = query(None)
    del no_key["shoppingCart"]
    response = api.post(R, json=no_key)
    assert response.status_code == 200, response.text
    assert "experiment" not in response.json()
