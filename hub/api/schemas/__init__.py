"""Request and response models of the HTTP API, one module per resource (the routes import them)."""
