"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` in production,
`flask --app wsgi run` in development."""
from app import create_app
from app.config import SettingsError

try:
    app = create_app()
except SettingsError as exc:
    # one line per bad variable, not a traceback
    raise SystemExit(f"configuration error:\n{exc}") from None
