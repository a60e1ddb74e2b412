"""The TMF resource layer: listing, filtering, selection, patching and the
lifecycle of stored resources, shared by every API blueprint."""
