"""One flask-smorest blueprint per TMF API."""
