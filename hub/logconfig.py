"""Logging, configured once by each entry point (`villagehub serve|demo`, an ingest worker process)."""

from __future__ import annotations

import logging

NOISY = ("httpx", "httpcore", "amqtt", "transitions", "multipart")


def configure_logging(level: str, prefix: str = "") -> None:
    logging.basicConfig(level=level.upper(), format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
