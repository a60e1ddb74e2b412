"""One Unicode form for every text the service compares: NFC (Unicode
Standard Annex #15, "Unicode Normalization Forms").

The same word can be written two ways: "privé" as U+00E9, or as "e" and the
combining acute accent U+0301 (NFD), which is what macOS input methods and
file names often produce. Compared code point by code point the two differ,
so a customer whose segment was typed on a Mac would not match the rule
value `privé`, nor would a filter find it. Every text is put into NFC where
it enters, one place per way in:

- rule, catalog and cases files: their whole text when it is parsed
  (app/rules/model/yamlload.py `load_text`);
- JSON request bodies, every key and string value, so what is stored is NFC
  (app/jsonbody.py `parse_json`), and lines loaded by `flask store load`;
- query strings, names and values (`NfcRequest`, the app's request class),
  so a filter compares NFC with NFC;
- the facts an evaluation reads, whatever their source, stored documents
  written before this rule included (app/rules/model/facts.py).

NFC, not NFKC: compatibility forms (the ligature "ﬁ", full-width digits) are
different text that a client may mean, and NFC is what the W3C's "Character
Model for the World Wide Web: String Matching" recommends for matching."""
from __future__ import annotations

import unicodedata


def nfc(text: str) -> str:
    """`text` in NFC; the same object when it already is (the common case:
    `unicodedata.is_normalized` answers without building a new string)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def nfc_tree(value):
    """A parsed JSON value with every key and string in NFC (a new tree of
    dicts and lists; numbers, booleans and None as they are). Two keys of one
    object that differ only in their form (`"café"` written both ways) become
    one key: ValueError("duplicate key ...") then, as a literal duplicate key
    is refused by the JSON readers, never one of the values silently dropped.
    Recursive: the request reader limits the depth before (app/jsonbody.py
    MAX_DEPTH), and json.loads, which builds what `flask store load` passes,
    is recursive too."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = nfc(key) if isinstance(key, str) else key
            if name in out:
                raise ValueError(f"duplicate key {name!r} (the same text in two Unicode forms)")
            out[name] = nfc_tree(item)
        return out
    if isinstance(value, list):
        return [nfc_tree(item) for item in value]
    return value
