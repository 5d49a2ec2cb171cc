"""The HTTP API (FastAPI): an app factory and one router per resource."""
