"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` in production,
`flask --app wsgi run` in development."""
from app import create_app

app = create_app()
