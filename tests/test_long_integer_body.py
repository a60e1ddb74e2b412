"""An integer longer than Python reads (4,300 digits, its integer string
limit) in a request body: 400 INEXACT_NUMBER with a plain message, on both
stores, and nothing stored. Before: 400 INVALID_JSON whose message was
Python's own ("... use sys.set_int_max_str_digits() to increase the
limit"), an instruction for the server's code, not for the client."""
from __future__ import annotations

import uuid

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
JSON = {"Content-Type": "application/json"}


def test_an_integer_longer_than_python_reads_is_refused_with_a_plain_message(api):
    tag = uuid.uuid4().hex
    text = ('{"name": "%s", "engagedParty": {"id": "p", "@referredType": "Individual"}, '
            '"characteristic": [{"name": "n", "value": {"deep": [%s]}}]}' % (tag, "7" * 5000))
    body = assert_tmf_error(api.post(C, data=text, headers=JSON), 400)
    assert body["code"] == "INEXACT_NUMBER", body
    assert "sys." not in body["message"] and "4300" in body["message"], body
    listed = api.get(C, params={"name": tag})
    assert listed.status_code == 200 and listed.json() == [], listed.text
