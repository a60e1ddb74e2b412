"""The baseline: a bare Flask JSON endpoint, served by the same gunicorn configuration
as the service (`gunicorn -c gunicorn.conf.py bench.bare_app:app`).

It does what any JSON API must do and nothing else: parse the request body and
answer a small JSON document. The gap between it and the TMF680 instant POST is
the cost of the recommendation path itself (validation, store look-ups, rules,
TMF response).
"""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/bare")
def bare():
    body = request.get_json(force=True, silent=True) or {}
    return jsonify({"state": "done", "instantSyncRecommendation": bool(body.get("instantSyncRecommendation")),
                    "recommendationItem": []})


@app.get("/health")
def health():
    return jsonify({"status": "ok"})
