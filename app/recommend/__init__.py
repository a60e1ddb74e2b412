"""From a TMF680 query to ranked items: gather the facts the rules read
(request, TMF629 customer, TMF637 inventory) and ask the rules engine."""
from .recommender import Recommender, RecommenderUnavailable

__all__ = ["Recommender", "RecommenderUnavailable"]
