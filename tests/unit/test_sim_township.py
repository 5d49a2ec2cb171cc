"""Which devices the simulator runs: township files, counts, credentials, broker URLs (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.fleet import parse_broker_url
from device_sim.township import (
    DeviceSpec,
    TownshipError,
    from_counts,
    load_credentials,
    parse_township_csv,
    parse_township_yaml,
)

pytestmark = pytest.mark.unit

YAML = """
township:
  name: 青山镇
  villages:
    - id: v01
      name: 东村
      groups:
        - id: v01-g1
          name: 一组
          devices:
            - {id: cam-a, kind: camera, name: 村口}
      devices:
        - {id: spk-a, kind: speaker, name: 广场, password: s3cret}
  devices:
    - {id: cam-free, kind: camera, name: 路口}
"""


def test_township_yaml_nested_villages_groups_and_loose_devices() -> None:
    assert parse_township_yaml(YAML) == [
        DeviceSpec("cam-a", "camera", "v01", "v01-g1", "村口"),
        DeviceSpec("spk-a", "speaker", "v01", None, "广场", "s3cret"),
        DeviceSpec("cam-free", "camera", None, None, "路口"),
    ]


def test_township_yaml_flat_device_list_with_village_and_group() -> None:
    text = "devices:\n  - {id: c1, kind: camera, village: v1, group: g1}\n"
    assert parse_township_yaml(text) == [DeviceSpec("c1", "camera", "v1", "g1")]


def test_township_csv_reads_device_rows_only() -> None:
    text = ("kind,id,name,village,group,lat\nvillage,v01,东村,,,\ngroup,v01-g1,一组,v01,,\n"
            "camera,cam-1,村口,v01,v01-g1,30.1\nspeaker,spk-1,广场,v01,,\n")
    assert parse_township_csv(text) == [DeviceSpec("cam-1", "camera", "v01", "v01-g1", "村口"),
                                        DeviceSpec("spk-1", "speaker", "v01", None, "广场")]


@pytest.mark.parametrize("text", ["devices: [{id: x, kind: toaster}]", "devices: [{kind: camera}]",
                                  "devices: [{id: x, kind: camera}, {id: x, kind: speaker}]"])
def test_township_with_bad_device_is_refused(text: str) -> None:
    with pytest.raises(TownshipError):
        parse_township_yaml(text)


def test_counts_spread_devices_over_villages_with_valid_ids() -> None:
    devs = from_counts(5, 3, villages=2)
    assert [d.id for d in devs][:2] == ["cam-0001", "cam-0002"]
    assert sum(d.kind == "speaker" for d in devs) == 3
    assert {d.village for d in devs} == {"v01", "v02"}


def test_credentials_from_map_or_lines(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("cam-1: pw1\nspk-1: pw2\n")
    (tmp_path / "c.txt").write_text("# comment\ncam-1:pw1\nspk-1:pw:with:colons\n")
    assert load_credentials(tmp_path / "c.yaml") == {"cam-1": "pw1", "spk-1": "pw2"}
    assert load_credentials(tmp_path / "c.txt") == {"cam-1": "pw1", "spk-1": "pw:with:colons"}


def test_broker_url_gives_host_port_tls_and_shared_password() -> None:
    b = parse_broker_url("mqtt://user:p%40ss@broker.local:1884")
    assert (b.host, b.port, b.tls, b.shared_password) == ("broker.local", 1884, False, "p@ss")
    assert parse_broker_url("mqtts://h").port == 8883
    with pytest.raises(ValueError):
        parse_broker_url("http://h")


def test_the_bundled_sample_township_loads_with_stream_urls() -> None:
    from device_sim.township import load_township

    sample = Path(__file__).parents[2] / "hub" / "data" / "township.yaml"
    if not sample.exists():
        pytest.skip("no bundled sample township")
    devs = load_township(sample)
    assert {d.kind for d in devs} == {"camera", "speaker", "light"} and any(d.group for d in devs)
    assert any(d.stream_url and d.stream_url.startswith("rtsp://") for d in devs if d.kind == "camera")
