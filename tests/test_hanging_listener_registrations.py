"""A delivery to a listener that hangs holds no store transaction or row
lock (the lease is committed before the send: app/events/lease.py): while
it hangs, registering and unregistering hubs and creating customers answer
at once, on both stores. Asked when a registration under load (the full
suite at load 30, PostgreSQL) answered without an `id`: not this."""
from __future__ import annotations

from helpers import PATIENCE, Client, wait_until
from test_hardening_faults import C, HUB, customer, misbehaving, registered


def test_a_hanging_delivery_does_not_hold_up_registrations_or_changes(make_server):
    service = make_server(env={"RECO_EVENT_TIMEOUT_SECONDS": "60"})
    api = Client(service.url)
    hanging, healthy = misbehaving("hang"), misbehaving("ok")
    try:
        hub = registered(api, hanging.url)
        assert api.post(C, json=customer()).status_code == 201
        assert wait_until(lambda: len(hanging.hits) >= 1, PATIENCE)   # its delivery is under way
        for _ in range(3):                  # answered while that delivery still hangs
            other = registered(api, healthy.url)
            assert api.post(C, json=customer()).status_code == 201
            assert api.delete(f"{HUB}/{other['id']}").status_code == 204
        assert len(hanging.hits) == 1                 # still the one delivery, unanswered
        assert api.delete(f"{HUB}/{hub['id']}").status_code == 204     # its own hub too
    finally:
        hanging.release.set()
        for server in (hanging, healthy):
            server.shutdown()
            server.server_close()
