"""Marshmallow schemas built from the vendored TMF Swagger documents."""
from .spec import SpecSchemas, TmfSchema

__all__ = ["SpecSchemas", "TmfSchema"]
