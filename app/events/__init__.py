"""Hub registrations and notification delivery (TMF REST guidelines' pub/sub)."""
from .allowlist import CallbackPolicy
from .bus import EventBus

__all__ = ["EventBus", "CallbackPolicy"]
