"""Hub registrations and notification delivery (TMF REST guidelines' pub/sub)."""
from .bus import EventBus
from .allowlist import CallbackPolicy

__all__ = ["EventBus", "CallbackPolicy"]
