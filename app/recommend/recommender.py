"""The one interface the TMF680 API calls: recommend(query) -> the engine's
ranked offering ids and reasons (app/rules Recommendation); the TMF
RecommendationItem list is made at the edge (app/recommend/items.py)."""
from __future__ import annotations

from contextlib import nullcontext

from ..observability.metrics import count_experiment_arm, observe_recommendation
from ..rules import Recommendation, RuleService, RuleSetError
from .facts import PartyFacts, QueryFacts, build_context
from .read_ahead import ReadAheadChoice, Watched


class RecommenderUnavailable(Exception):
    """No valid rule set is loaded; the reason is in the health report."""


class Recommender:
    def __init__(self, rules: RuleService, store, experiments=None):
        self.rules = rules
        self.store = store
        self.parties = PartyFacts(store)
        # app.experiments.router.ExperimentRouter, or None: no experiments
        self.experiments = experiments
        # read the contact policies' history with the customer, or on need (read_ahead.py)
        self.read_ahead = ReadAheadChoice()

    @observe_recommendation
    def recommend(self, query: dict, mode: str = "instant",
                  contexts: list | None = None, facts: QueryFacts | None = None) -> Recommendation:
        """The engine's answer for a QueryProductRecommendation that passed the
        create checks: offering ids, ranks and the rules behind them, and the
        rule set that produced it (`tmf_items` makes the TMF680 items).
        `mode` (instant, async) labels the metrics only. Raises
        RecommenderUnavailable when no valid rule set is loaded. The Context
        evaluated is appended to `contexts` when given (the decision log
        records its customer segment). `facts`: what the create checks read
        of the query (query.check_query), when they ran in this request."""
        party = query.get("relatedParty")
        # a query naming a party reads the store (customer, products, and the
        # contact policies' history when the version declares any): on
        # PostgreSQL one connection and transaction for all of them
        with self.store.reading() if isinstance(party, dict) and party.get("id") else nullcontext():
            # a clock read; a changed file is reloaded by the service's watcher
            # thread while the version in service keeps answering (no request waits for a reload)
            self.rules.poll()
            try:
                routed = self.experiments.route(query) if self.experiments is not None else None
                # the answering version first: its contact policies' history
                # is read in the customer look-up's round trip (facts.py)
                engine = self.rules.engine if routed is None else routed[0]
                policies = engine.ruleset.contact_policies if engine is not None else ()
                # on a store that reads ahead, ahead only while this version's
                # recent requests needed the history (read_ahead.py)
                tracked = bool(policies) and self.store.sql and isinstance(party, dict) and party.get("id")
                ahead = not tracked or self.read_ahead.wanted(engine.ruleset.hash)
                context = build_context(query, self.parties, facts, policies if ahead else ())
                watched = None
                if tracked and context.history is not None:
                    watched = context.history = Watched(context.history)
                if contexts is not None:
                    contexts.append(context)
                if routed is None:
                    result = self.rules.recommend(context)
                else:
                    result = self._in_experiment(context, *routed)
                if watched is not None:
                    self.read_ahead.observe(engine.ruleset.hash, watched.asked)
                return result
            except RuleSetError as exc:       # only "no usable rule set"; an engine fault is a 500
                raise RecommenderUnavailable(str(exc)) from exc

    def _in_experiment(self, context, engine, experiment: dict) -> Recommendation:
        """The answer of the query's arm: its version's engine, or for a
        holdout no items (under the active version's name)."""
        if engine is None:
            active = self.rules.engine.ruleset
            result = Recommendation(items=[], ruleset_id=active.id, ruleset_version=active.version,
                                    ruleset_hash=active.hash)
        else:
            result = engine.recommend(context)
        result.experiment = experiment
        count_experiment_arm(experiment["id"], experiment["arm"])
        return result
