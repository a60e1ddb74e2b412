"""The app's parts are one typed object read through one accessor
(app/services.py), not `app.extensions["reco"]` unpacked in each module."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.services import Services, services

APP = Path(__file__).resolve().parent.parent / "app"


def test_the_services_of_an_app_are_one_typed_object(tmp_path):
    app = create_app(data_dir=tmp_path / "data", background_workers=False)
    reco = services(app)
    assert isinstance(reco, Services) and isinstance(reco.settings, Settings)
    assert reco.settings.data_dir == tmp_path / "data"
    assert set(reco.resources) >= {"queryProductRecommendation", "customer", "product", "salesLead"}
    with app.app_context():
        assert services() is reco
    with pytest.raises(RuntimeError):      # outside an app: Flask's own error, not a KeyError
        services()


def test_only_the_accessor_reads_the_extension():
    found = [f"{path.relative_to(APP)}:{number}"
             for path in APP.rglob("*.py") if path.name != "services.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"extensions(\[|\.get\()[\"']reco", line)]
    assert not found, found
