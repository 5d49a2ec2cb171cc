"""The sample township and `villagehub registry …` through typer's CliRunner."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.registry import SAMPLE_TOWNSHIP, Township, parse_township
from hub.registry.cli import app
from hub.registry.sample import CENTRE, sample_township, synthetic_township
from hub.registry.store import Registry
from hub.registry.township_file import to_csv, to_yaml
from hub.topics import is_valid_id

pytestmark = pytest.mark.unit


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VH_CONFIG", raising=False)
    return CliRunner()


def registry_at(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "data" / "registry.db")


# ------------------------------------------------------------------ the sample township


def test_sample_township_has_a_dozen_villages_sixty_groups_and_the_promised_devices() -> None:
    town = parse_township(SAMPLE_TOWNSHIP.read_bytes(), filename=SAMPLE_TOWNSHIP.name)
    kinds = Counter(d.kind for d in town.devices)
    assert town.name == "示范乡"
    assert len(town.villages) == 12 and len(town.groups) == 60
    assert 140 <= kinds["camera"] <= 160 and 110 <= kinds["speaker"] <= 130
    assert 24 <= kinds["light"] <= 48
    assert all(v.name.endswith("村") for v in town.villages)
    ids = [x.id for x in town.villages] + [x.id for x in town.groups] + [x.id for x in town.devices]
    assert all(is_valid_id(i) for i in ids)
    assert all(d.stream_url and d.stream_url.startswith("rtsp://10.") for d in town.devices if d.kind == "camera")


def test_sample_devices_sit_within_ten_km_of_the_township_centre() -> None:
    town = parse_township(SAMPLE_TOWNSHIP.read_bytes())
    for d in town.devices:
        assert d.lat is not None and d.lon is not None
        dy = (d.lat - CENTRE[0]) * 111.3
        dx = (d.lon - CENTRE[1]) * 111.3 * math.cos(math.radians(CENTRE[0]))
        assert math.hypot(dx, dy) < 10, d


def same(a: Township, b: Township) -> bool:
    """Equal townships; a nested YAML file lists devices by village and group, so order may differ."""
    return (a.name, a.villages, a.groups) == (b.name, b.villages, b.groups) and sorted(
        a.devices, key=lambda d: d.id
    ) == sorted(b.devices, key=lambda d: d.id)


def test_shipped_sample_is_what_the_generator_writes() -> None:
    assert same(parse_township(SAMPLE_TOWNSHIP.read_bytes()), sample_township())


# ------------------------------------------------------------------ CLI


def test_cli_imports_the_sample_and_lists_it(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(SAMPLE_TOWNSHIP)])
    assert result.exit_code == 0, result.output
    assert "devices +307" in result.stdout
    reg = registry_at(tmp_path)
    assert len(reg.devices()) == 307 and len(reg.groups()) == 60
    reg.close()
    listed = runner.invoke(app, ["list", "--village", "lijia", "--kind", "speaker"])
    assert listed.exit_code == 0 and "10 device(s)" in listed.stdout


def test_cli_import_errors_name_row_and_field_and_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,id,name,lat\ncamera,c1,村口,north\ntoaster,c2,x,1\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(bad)])
    assert result.exit_code == 1
    assert "row 2, column lat: not a number" in result.output
    assert "row 3, column kind: must be village, group, camera, speaker or light" in result.output
    reg = registry_at(tmp_path)
    assert reg.devices() == []  # nothing imported
    reg.close()


def test_cli_import_replace_and_csv_format(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["import", "--sample"]).exit_code == 0
    small = tmp_path / "small.csv"
    small.write_text(to_csv(synthetic_township(10, villages=1, groups_per_village=1)), encoding="utf-8")
    result = runner.invoke(app, ["import", str(small), "--replace"])
    assert result.exit_code == 0, result.output
    assert "devices +10" in result.stdout and "-307" in result.stdout
    reg = registry_at(tmp_path)
    assert len(reg.devices()) == 10
    reg.close()


def test_cli_export_writes_a_file_that_imports_back(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["import", "--sample"]).exit_code == 0
    for fmt in ("yaml", "csv", "json"):
        out = tmp_path / f"export.{fmt}"
        assert runner.invoke(app, ["export", "--format", fmt, "-o", str(out)]).exit_code == 0
        town = parse_township(out.read_bytes(), filename=out.name)
        assert len(town.devices) == 307 and len(town.villages) == 12
    yaml_out = runner.invoke(app, ["export"])
    assert yaml_out.stdout.startswith("township:") and "示范乡" in yaml_out.stdout


def test_cli_add_and_remove_device(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["import", "--sample"]).exit_code == 0
    added = runner.invoke(app, ["add-device", "cam-new", "--kind", "camera", "--name", "新桥头",
                                "--group", "lijia-g2", "--tag", "vendor=dahua", "--lat", "31.06"])
    assert added.exit_code == 0, added.output
    assert "village lijia, group lijia-g2" in added.stdout
    refused = runner.invoke(app, ["add-device", "cam-bad", "--kind", "camera", "--name", "x",
                                  "--village", "wangzhuang", "--group", "lijia-g2"])
    assert refused.exit_code == 1
    assert "group: group 'lijia-g2' belongs to village 'lijia', not 'wangzhuang'" in refused.output
    reg = registry_at(tmp_path)
    assert reg.get("cam-new") is not None and reg.get("cam-new").tags == {"vendor": "dahua"}  # type: ignore[union-attr]
    reg.close()
    assert runner.invoke(app, ["remove-device", "cam-new"]).exit_code == 0
    assert runner.invoke(app, ["remove-device", "cam-new"]).exit_code == 1


def test_cli_lists_unregistered_devices(runner: CliRunner, tmp_path: Path) -> None:
    reg = registry_at(tmp_path)
    reg.note_unregistered("stray-cam", "camera")
    reg.close()
    result = runner.invoke(app, ["list", "--unregistered"])
    assert result.exit_code == 0 and "stray-cam" in result.stdout and "1 device(s)" in result.stdout


def test_yaml_written_for_a_synthetic_township_reads_back() -> None:
    town = synthetic_township(50, villages=2, groups_per_village=2)
    assert same(parse_township(to_yaml(town)), town)


def test_cli_check_reports_what_would_change_and_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "--sample", "--check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("checked (nothing written)") and "devices +307" in result.stdout
    reg = registry_at(tmp_path)
    assert reg.devices() == []
    reg.close()
