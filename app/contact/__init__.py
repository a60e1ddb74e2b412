"""Where contact policies read a party's history: the store's reactions
and the decision log's answers (history.py). The policies themselves live
with the rules (app/rules/model/contact.py, app/rules/engine/contact.py)."""
from .history import history_source

__all__ = ["history_source"]
