"""`python -m app.events dispatch`: the event dispatcher process
(app/events/process.py), started by gunicorn.conf.py."""
import sys

from .process import COMMAND, main

if sys.argv[1:] != [COMMAND]:
    sys.exit(f"usage: python -m app.events {COMMAND}")
sys.exit(main())
