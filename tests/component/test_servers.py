"""The test servers themselves start and answer (a canary for the fixtures)."""

import pytest

from tests.servers import InfluxServer, MosquittoServer, wait_port

pytestmark = pytest.mark.component


def test_mosquitto_listens_on_loopback(mosquitto: MosquittoServer) -> None:
    wait_port(mosquitto.port, timeout=2)


def test_influxdb_answers_influxql(influxdb: InfluxServer) -> None:
    assert influxdb.query("SHOW DATABASES", db="") is not None
