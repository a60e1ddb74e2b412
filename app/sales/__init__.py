"""TMF699 sales leads: the lead lifecycle, leads made from recommended items,
and the conversion report per rule. Plain functions over dicts; the HTTP layer
(app/api/sales.py) and the CLI (app/cli/sales.py) call them."""
from .lifecycle import (FINAL_STATUSES, INITIAL_STATUS, STATUSES, TRANSITIONS, check_transition,
                        stamp_new_lead, stamp_status_change)
from .recommendation_lead import (LEAD_JSON_SCHEMA, LEAD_TYPE, REFERENCE_ATTRIBUTE,
                                  REFERENCE_DESCRIPTION, REQUEST_REFERENCE_KEYS, RecommendationLead, build_recommendation_lead, check_patch,
                                  is_recommendation_lead, lead_id_for)
from .report import conversion_report, report_rows

__all__ = [
    "FINAL_STATUSES", "INITIAL_STATUS", "LEAD_JSON_SCHEMA", "LEAD_TYPE", "REFERENCE_ATTRIBUTE",
    "REFERENCE_DESCRIPTION",
    "REQUEST_REFERENCE_KEYS", "STATUSES", "TRANSITIONS", "RecommendationLead", "build_recommendation_lead", "check_patch",
    "check_transition", "conversion_report",
    "is_recommendation_lead", "lead_id_for", "report_rows", "stamp_new_lead",
    "stamp_status_change",
]
