"""The product catalog: TMF620 ProductOfferings and the sales channels, from YAML.

A catalog directory holds one or more `*.yaml` files, each a mapping with any of:

    productOffering:   # list of TMF620 ProductOffering fields
      - id: "6547"
        name: TMFone
        lifecycleStatus: Active
        category: [{id: devices, name: devices}]
        ...
    channels:          # list of {id, name}
      - {id: "21", name: mobile app channel}

Offerings get an href `{base}/tmf-api/productCatalogManagement/v4/productOffering/{id}`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ...ids import id_problem
from .common import Checker, as_id, canonical_json, freeze, in_window, plain, read_valid_for, thaw
from .errors import Problem, RuleSetError
from .source import is_contained, read_source
from .yamlload import PosDict, display_path, load_text

HREF_PATH = "/tmf-api/productCatalogManagement/v4/productOffering/"


def offering_ref(offering_id: str, name: str, base: str = "") -> dict:
    """The TMF ProductOfferingRef of an offering: {id, href, name,
    @referredType}; `href` is `base` (RECO_PUBLIC_BASE_URL, an engine's
    href base, or "": relative) plus the TMF620 path (TMF620 v4.0.0
    ProductOfferingRef)."""
    return {"id": offering_id, "href": f"{base.rstrip('/')}{HREF_PATH}{offering_id}", "name": name,
            "@referredType": "ProductOffering"}

OFFERING_FIELDS = {
    "id", "href", "description", "isBundle", "isSellable", "lastUpdate", "lifecycleStatus",
    "name", "statusReason", "version", "agreement", "attachment", "bundledProductOffering",
    "category", "channel", "marketSegment", "place", "prodSpecCharValueUse",
    "productOfferingPrice", "productOfferingTerm", "productSpecification", "resourceCandidate",
    "serviceCandidate", "serviceLevelAgreement", "validFor",
}
TOP_LEVEL = {"productOffering", "channels", "catalog"}
LIST_FIELDS = {"agreement", "attachment", "bundledProductOffering", "category", "channel",
               "marketSegment", "place", "prodSpecCharValueUse", "productOfferingPrice",
               "productOfferingTerm", "serviceLevelAgreement"}


@dataclass
class Offering:
    id: str
    name: str
    lifecycle_status: str
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    categories: tuple[str, ...]          # category ids and names (both match in rules)
    data: dict                           # the TMF620 ProductOffering as loaded (plain JSON)
    file: str = ""
    line: int = 1

    @property
    def is_active(self) -> bool:
        return self.lifecycle_status.lower() == "active"

    def valid_at(self, when: dt.datetime) -> bool:
        """validFor contains `when`: start inclusive, end exclusive, open bounds allowed."""
        return in_window(when, self.valid_from, self.valid_to)

    def href(self, base: str = "") -> str:
        return f"{base.rstrip('/')}{HREF_PATH}{self.id}"

    def resource(self, base: str = "") -> dict:
        """The full TMF620 ProductOffering with its href."""
        return {**self.data, "href": self.href(base)}


@dataclass
class Catalog:
    offerings: dict[str, Offering] = field(default_factory=dict)
    channels: dict[str, dict] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    hash: str = ""
    seen_ids: dict = field(default_factory=dict, repr=False)

    @property
    def category_tokens(self) -> set[str]:
        cached = self.__dict__.get("_category_tokens")
        if cached is None or cached[0] != len(self.offerings):
            tokens = {token for offering in self.offerings.values() for token in offering.categories}
            cached = self.__dict__["_category_tokens"] = (len(self.offerings), tokens)
        return cached[1]

    def get(self, offering_id: str) -> Offering | None:
        return self.offerings.get(offering_id)


def catalog_files(catalog_dir: Path) -> list[Path]:
    catalog_dir = Path(catalog_dir)
    if not catalog_dir.is_dir():
        return []
    return sorted(p for p in catalog_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                  and is_contained(catalog_dir, p))      # never a link to a file elsewhere


def load_catalog(catalog_dir: Path) -> Catalog:
    """Load and check every catalog file; raise RuleSetError listing all problems."""
    catalog = Catalog()
    problems: list[Problem] = []
    digest = hashlib.sha256()
    files = catalog_files(catalog_dir)
    if not files:
        raise RuleSetError(f"no catalog files in {display_path(catalog_dir)}",
                           [Problem(display_path(catalog_dir), 1, 1, "no *.yaml catalog file found")])
    for path in files:
        name = display_path(path)
        catalog.files.append(name)
        try:  # read once: the hash and the parse must see the same content
            text = read_source(path, name).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # e.g. removed mid-reload
            problems.append(Problem(name, 1, 1, f"cannot read file: {exc}", code="yaml-syntax"))
            continue
        except RuleSetError as exc:                   # over the size limit: not read
            problems.extend(exc.problems)
            continue
        try:
            doc = load_text(text, name)
        except RuleSetError as exc:
            problems.extend(exc.problems)
            continue
        # of the content, like the rule set hash: a comment edit changes nothing
        digest.update(path.name.encode() + b"\0" + canonical_json(doc).encode() + b"\0")
        check = Checker(name)
        _read_catalog_doc(doc, check, catalog)
        problems.extend(check.problems)
    catalog.hash = digest.hexdigest()[:16]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise RuleSetError("the catalog has errors", errors)
    doc = check = None                    # see common.freeze: a compact copy, 24 -> 11 MiB at 1,000 offerings
    frozen = freeze(catalog)
    del catalog
    return thaw(frozen)


def _read_catalog_doc(doc, check: Checker, catalog: Catalog) -> None:
    if doc is None:
        return
    if not check.mapping(doc, (1, 1), "a catalog file"):
        return
    check.unknown_keys(doc, TOP_LEVEL, "a catalog file")
    offerings = doc.get("productOffering", [])
    if check.sequence(offerings, doc.at("productOffering"), "productOffering"):
        for index, item in enumerate(offerings):
            raw_id = as_id(item.get("id")) if isinstance(item, dict) else None
            if raw_id is not None and raw_id in catalog.seen_ids:
                first_file, first_line = catalog.seen_ids[raw_id]
                check.add(offerings.at(index), f"duplicate offering id {raw_id!r} (first in {first_file}:{first_line})",
                          code="duplicate-id")
                continue
            if raw_id is not None:
                catalog.seen_ids[raw_id] = (check.file, offerings.at(index)[0])
            offering = _read_offering(item, offerings.at(index), check)
            if offering is not None:
                catalog.offerings[offering.id] = offering
    channels = doc.get("channels", [])
    if check.sequence(channels, doc.at("channels"), "channels"):
        for index, item in enumerate(channels):
            where = channels.at(index)
            if not check.mapping(item, where, "a channel"):
                continue
            check.unknown_keys(item, {"id", "name", "description"}, "a channel")
            channel_id = as_id(item.get("id"))
            if channel_id is None:
                check.add(where, "a channel needs an id (text or number)")
                continue
            if channel_id in catalog.channels:
                check.add(where, f"duplicate channel id {channel_id!r}", code="duplicate-id")
                continue
            catalog.channels[channel_id] = {"id": channel_id, **{k: plain(v) for k, v in item.items() if k != "id"}}


def _read_offering(item, where, check: Checker) -> Offering | None:
    if not check.mapping(item, where, "a product offering"):
        return None
    item: PosDict
    check.unknown_keys(item, OFFERING_FIELDS, "a ProductOffering (TMF620)")
    offering_id = as_id(item.get("id"))
    if offering_id is None:
        check.add(item.at("id") if "id" in item else where, "a product offering needs an id (text)")
        return None
    if id_problem(offering_id):   # the id ends the offering's href
        check.add(item.at("id"), f"offering {offering_id!r}: {id_problem(offering_id)}")
        return None
    ok = True
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        check.add(item.at("name") if "name" in item else where, f"offering {offering_id}: name must be text")
        ok = False
    status = item.get("lifecycleStatus")
    if not isinstance(status, str) or not status.strip():
        check.add(item.at("lifecycleStatus") if "lifecycleStatus" in item else where,
                  f"offering {offering_id}: lifecycleStatus must be text (e.g. Active, Retired)")
        ok = False
    for key in ("description", "version", "statusReason"):
        if key in item and not isinstance(item[key], (str, int, float)):
            check.add(item.at(key), f"offering {offering_id}: {key} must be text")
            ok = False
    for key in ("isBundle", "isSellable"):
        if key in item and not isinstance(item[key], bool):
            check.add(item.at(key), f"offering {offering_id}: {key} must be true or false")
            ok = False
    for key in LIST_FIELDS:
        if key in item and not isinstance(item[key], list):
            check.add(item.at(key), f"offering {offering_id}: {key} must be a list")
            ok = False
    window_ok, valid_from, valid_to = read_valid_for(check, item, f"offering {offering_id}: ")
    ok = ok and window_ok
    categories: list[str] = []
    for index, category in enumerate(item.get("category") or [] if isinstance(item.get("category"), list) else []):
        cwhere = item["category"].at(index)
        if not check.mapping(category, cwhere, f"offering {offering_id}: a category"):
            ok = False
            continue
        tokens = [as_id(category.get(k)) for k in ("id", "name")]
        tokens = [t for t in tokens if t]
        if not tokens:
            check.add(cwhere, f"offering {offering_id}: a category needs an id or a name")
            ok = False
        categories.extend(t for t in tokens if t not in categories)
    prices = item.get("productOfferingPrice")
    if isinstance(prices, list):
        for index, price in enumerate(prices):
            if not check.mapping(price, prices.at(index), f"offering {offering_id}: a productOfferingPrice"):
                ok = False
                continue
            amount = price.get("price")
            if isinstance(amount, dict) and "value" in amount and not isinstance(amount["value"], (int, float)):
                check.add(amount.at("value"), f"offering {offering_id}: price value must be a number")
                ok = False
    if not ok:
        return None
    data = plain(item)
    data["id"] = offering_id
    if "category" in data:
        data["category"] = [{**c, **({"id": str(c["id"])} if "id" in c else {})} for c in data["category"]]
    data.setdefault("@type", "ProductOffering")
    return Offering(id=offering_id, name=name.strip(), lifecycle_status=status.strip(),
                    valid_from=valid_from, valid_to=valid_to, categories=tuple(categories),
                    data=data, file=check.file, line=where[0])
