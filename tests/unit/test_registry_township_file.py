"""Township files (YAML and CSV) → records; every error names its line/row and field (pure)."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.registry import township_yaml
from hub.registry.model import Device, Group, Township, Village
from hub.registry.township_file import (
    TownshipFileError,
    detect_format,
    parse_township,
    to_csv,
    to_document,
    to_yaml,
)

pytestmark = pytest.mark.unit

YAML = """\
township:
  name: 示范乡
  villages:
    - id: lijia
      name: 李家村
      lat: 31.06
      lon: 114.39
      quiet_hours: "21:30-06:00"
      groups:
        - id: lijia-g1
          name: 第一村民组
          devices:
            - id: cam-lijia-01
              kind: camera
              name: 村口
              lat: 31.061
              lon: 114.391
              stream_url: rtsp://10.20.1.11:554/Streaming/Channels/101
              tags: {vendor: hikvision, installed: 2023}
      devices:
        - {id: spk-lijia-01, kind: speaker, name: 文化广场, lat: 31.06, lon: 114.39}
  devices:
    - {id: cam-xiang-01, kind: camera, name: 乡政府大门}
"""

CSV = """\
kind,id,name,village,group,lat,lon,quiet_hours,stream_url,tags
village,lijia,李家村,,,31.06,114.39,21:30-06:00,,
group,lijia-g1,第一村民组,lijia,,,,,,
camera,cam-lijia-01,村口,lijia,lijia-g1,31.061,114.391,,rtsp://10.20.1.11:554/Streaming/Channels/101,vendor=hikvision;installed=2023
speaker,spk-lijia-01,文化广场,lijia,,31.06,114.39,,,
camera,cam-xiang-01,乡政府大门,,,,,,,
"""

EXPECTED = Township(
    "示范乡",
    [Village("lijia", "李家村", 31.06, 114.39, "21:30-06:00")],
    [Group("lijia-g1", "lijia", "第一村民组")],
    [
        Device("cam-lijia-01", "camera", "村口", "lijia", "lijia-g1", 31.061, 114.391,
               {"vendor": "hikvision", "installed": "2023"}, "rtsp://10.20.1.11:554/Streaming/Channels/101"),
        Device("spk-lijia-01", "speaker", "文化广场", "lijia", None, 31.06, 114.39),
        Device("cam-xiang-01", "camera", "乡政府大门"),
    ],
)


def errors_of(text: str, fmt: str | None = None) -> list[str]:
    with pytest.raises(TownshipFileError) as info:
        parse_township(text, fmt=fmt)  # type: ignore[arg-type]
    return info.value.errors


# ------------------------------------------------------------------ good files


def test_nested_yaml_gives_villages_groups_and_devices_with_their_village_and_group() -> None:
    assert parse_township(YAML) == EXPECTED


def test_csv_with_village_and_group_rows_gives_the_same_township_as_yaml() -> None:
    town = parse_township(CSV)
    assert (town.villages, town.groups, town.devices) == (EXPECTED.villages, EXPECTED.groups, EXPECTED.devices)


def test_csv_device_with_group_and_no_village_takes_the_group_village() -> None:
    text = CSV.replace("camera,cam-lijia-01,村口,lijia,lijia-g1", "camera,cam-lijia-01,村口,,lijia-g1")
    assert parse_township(text).devices[0].village == "lijia"


def test_csv_rows_may_come_in_any_order_and_columns_in_any_order() -> None:
    text = "name,id,kind,group,village\n村口,c1,camera,g1,\n一组,g1,group,,v1\n东村,v1,village,,\n"
    town = parse_township(text)
    assert town.devices == [Device("c1", "camera", "村口", "v1", "g1")]


def test_csv_tag_columns_and_utf8_bom_and_gb18030_are_read() -> None:
    text = "kind,id,name,tag:vendor,tags\ncamera,c1,村口,dahua,power=solar\n"
    assert parse_township(("\ufeff" + text).encode()).devices[0].tags == {"vendor": "dahua", "power": "solar"}
    assert parse_township(text.encode("gb18030")).devices[0].name == "村口"


def test_csv_blank_and_comment_rows_are_skipped() -> None:
    text = "# 示范乡\nkind,id,name\n\n# cameras\ncamera,c1,村口\n,,\n"
    assert [d.id for d in parse_township(text).devices] == ["c1"]


def test_simulator_password_is_accepted_and_never_kept() -> None:
    town = parse_township("township:\n  devices:\n    - {id: c1, kind: camera, name: x, password: s3cret}\n")
    assert town.devices == [Device("c1", "camera", "x")]
    assert parse_township("kind,id,name,password\ncamera,c1,x,s3cret\n").devices == town.devices


def test_json_is_read_as_yaml() -> None:
    assert parse_township('{"township": {"devices": [{"id": "c1", "kind": "camera", "name": "x"}]}}').devices == [
        Device("c1", "camera", "x")
    ]


@pytest.mark.parametrize(
    ("text", "filename", "expected"),
    [
        ("township:\n", None, "yaml"),
        ("# comment\n---\ntownship:\n", None, "yaml"),
        ('{"township": {}}', None, "yaml"),
        ("kind,id,name\n", None, "csv"),
        ("anything", "t.csv", "csv"),
        ("anything", "t.yml", "yaml"),
    ],
)
def test_format_is_detected_from_the_name_or_the_content(text: str, filename: str | None, expected: str) -> None:
    assert detect_format(text, filename) == expected


def test_yaml_and_csv_written_back_read_back_the_same() -> None:
    assert parse_township(to_yaml(EXPECTED)) == EXPECTED
    town = parse_township(to_csv(EXPECTED))
    assert town.devices == EXPECTED.devices and town.villages == EXPECTED.villages
    assert to_document(EXPECTED)["township"]["name"] == "示范乡"


# ------------------------------------------------------------------ YAML errors name line and path


def test_yaml_wrong_kind_names_line_path_and_allowed_values() -> None:
    errors = errors_of(YAML.replace("kind: camera", "kind: camara", 1))
    assert errors == ["line 14, township.villages[0].groups[0].devices[0].kind: must be camera, speaker or light"]


def test_yaml_collects_all_errors_in_line_order_not_just_the_first() -> None:
    text = (
        YAML.replace("lat: 31.061", "lat: north")
        .replace("quiet_hours: \"21:30-06:00\"", "quiet_hours: evening")
        .replace("name: 乡政府大门}", "name: 乡政府大门, colour: red}")
        .replace("id: spk-lijia-01", "id: cam-lijia-01")
    )
    assert errors_of(text) == [
        "line 8, township.villages[0].quiet_hours: must be HH:MM-HH:MM, e.g. 22:00-06:00",
        "line 16, township.villages[0].groups[0].devices[0].lat: not a number",
        "line 21, township.villages[0].devices[0].id: duplicate device id 'cam-lijia-01' "
        "(first at township.villages[0].groups[0].devices[0].id)",
        "line 23, township.devices[0].colour: unknown field",
    ]


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("{id: 'bad id', kind: camera, name: x}", "id: must be 1-64 letters, digits, _ or -"),
        ("{id: '-x', kind: camera, name: x}", "id: must be 1-64 letters, digits, _ or -"),
        ("{id: x, kind: camera}", "name: required"),
        ("{id: x, kind: camera, name: ''}", "name: must not be empty"),
        ("{id: x, kind: camera, name: n, lat: 91}", "lat: must be between -90 and 90"),
        ("{id: x, kind: camera, name: n, lon: -181}", "lon: must be between -180 and 180"),
        ("{id: x, kind: camera, name: n, stream_url: 'ftp://a'}", "stream_url: must be an rtsp:// or http(s)://"),
        ("{id: x, kind: camera, name: n, tags: [a]}", "tags: must be a mapping"),
        ("{id: 7, kind: camera, name: n}", "id: must be text"),
    ],
)
def test_yaml_device_field_errors_name_the_field(device: str, message: str) -> None:
    (error,) = errors_of(f"township:\n  devices:\n    - {device}\n")
    assert error.startswith("line 3, township.devices[0].")
    assert message in error


def test_yaml_duplicate_village_and_group_ids_are_errors() -> None:
    text = (
        "township:\n  villages:\n"
        "    - {id: v1, name: a, groups: [{id: g1, name: x}]}\n"
        "    - {id: v1, name: b, groups: [{id: g1, name: y}]}\n"
    )
    assert errors_of(text) == [
        "line 4, township.villages[1].id: duplicate village id 'v1' (first at township.villages[0].id)",
        "line 4, township.villages[1].groups[0].id: duplicate group id 'g1' "
        "(first at township.villages[0].groups[0].id)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("township:\n  villages: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "document: must be a mapping"),
        ("townsip:\n  villages: []\n", "township: required"),
    ],
)
def test_yaml_that_is_not_a_township_says_so(text: str, expected: str) -> None:
    assert any(expected in e for e in errors_of(text, "yaml"))


def test_yaml_syntax_error_names_the_line() -> None:
    (error,) = errors_of("township:\n  name: a\n  villages: [\n    {id: v1\n", "yaml")
    assert error.startswith("line ") and "not valid YAML" in error


# ------------------------------------------------------------------ CSV errors name row and column


def test_csv_not_a_number_names_row_and_column() -> None:
    text = CSV.replace("31.061,114.391", "north,114.391")
    assert errors_of(text) == ["row 4, column lat: not a number"]


def test_csv_collects_every_error_with_its_row() -> None:
    text = CSV + (
        "camara,c9,x,,,,,,,\n"
        "camera,c10,x,nowhere,,,,,,\n"
        "camera,c11,x,,nogroup,,,,,\n"
        "camera,cam-lijia-01,dup,,,,,,,\n"
        "group,g9,x,,,,,,,\n"
        "camera,c12,,,,,,,,a\n"
        "village,v9,x,,,1,,,rtsp://x,\n"
        "speaker,c13,x,,,,200,08:00,,\n"
    )
    assert errors_of(text) == [
        "row 7, column kind: must be village, group, camera, speaker or light",
        "row 8, column village: unknown village 'nowhere' (add a village row)",
        "row 9, column group: unknown group 'nogroup' (add a group row)",
        "row 10, column id: duplicate device id 'cam-lijia-01' (first at row 4, column id)",
        "row 11, column village: required",
        "row 12, column tags: must be key=value pairs separated by ;",
        "row 12, column name: required",
        "row 13, column stream_url: not used on a village row",
        "row 14, column lon: must be between -180 and 180",
        "row 14, column quiet_hours: not used on a device row",
    ]


def test_csv_group_in_another_village_is_an_error() -> None:
    text = CSV + "village,v2,王庄村,,,,,,,\ncamera,c2,x,v2,lijia-g1,,,,,\n"
    assert errors_of(text) == ["row 8, column group: group 'lijia-g1' belongs to village 'lijia', not 'v2'"]


def test_csv_unknown_or_missing_columns_are_named() -> None:
    assert errors_of("kind,id,nmae\ncamera,c1,x\n") == [
        "row 1, column nmae: unknown column",
        "row 1: missing column name",
    ]


def test_csv_extra_cells_beyond_the_header_are_an_error() -> None:
    assert errors_of("kind,id,name\ncamera,c1,x,surplus\n") == ["row 2: more cells than header columns"]


def test_hundreds_of_errors_are_capped_with_a_count_of_the_rest() -> None:
    text = "kind,id,name,lat\n" + "".join(f"camera,c{i},x,bad\n" for i in range(250))
    errors = errors_of(text)
    assert len(errors) == 201 and errors[-1] == "… and 50 more error(s)"


@pytest.mark.parametrize("data", [bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_binary_garbage_is_refused_as_not_text(data: bytes) -> None:
    assert errors_of(data) == ["not text: a township file is UTF-8 YAML or CSV"]  # type: ignore[arg-type]


# ------------------------------------------------------------------ round trip, for any text


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,12}", fullmatch=True)
_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20
).map(str.strip).filter(bool)
_coord = st.one_of(st.none(), st.floats(-90, 90, allow_nan=False))


@st.composite
def townships(draw: st.DrawFn) -> Township:
    vids = draw(st.lists(_ids, min_size=1, max_size=3, unique=True))
    villages = [Village(v, draw(_text), draw(_coord), draw(_coord)) for v in vids]
    gids = draw(st.lists(_ids, max_size=4, unique=True))
    groups = [Group(g, draw(st.sampled_from(vids)), draw(_text)) for g in gids]
    devices = []
    for i, did in enumerate(draw(st.lists(_ids, max_size=6, unique=True))):
        group = draw(st.one_of(st.none(), st.sampled_from(groups))) if groups else None
        village = group.village if group else draw(st.one_of(st.none(), st.sampled_from(vids)))
        tags = draw(st.dictionaries(_ids, _text, max_size=2))
        devices.append(Device(did, "camera" if i % 2 else "speaker", draw(_text), village,
                              group.id if group else None, draw(_coord), draw(_coord), tags,
                              draw(st.one_of(st.none(), _text.map(lambda t: "rtsp://h/" + t)))))
    return Township(draw(st.one_of(st.none(), _text)), villages, groups, devices)


def _same(a: Township, b: Township) -> bool:
    """Equal up to order: a nested YAML file lists groups and devices under their village."""
    return (
        a.villages == b.villages
        and sorted(a.groups, key=lambda g: g.id) == sorted(b.groups, key=lambda g: g.id)
        and sorted(a.devices, key=lambda d: d.id) == sorted(b.devices, key=lambda d: d.id)
    )


@settings(max_examples=60, deadline=None)
@given(townships())
def test_any_township_survives_a_yaml_and_a_csv_round_trip(town: Township) -> None:
    assert _same(parse_township(to_yaml(town), fmt="yaml"), town)
    assert _same(parse_township(to_csv(town), fmt="csv"), town)
    with mock.patch.object(township_yaml, "yaml_rs", None):  # PyYAML only, when yaml-rs is missing
        assert _same(parse_township(to_yaml(town), fmt="yaml"), town)


def test_yaml_aliases_are_refused_so_a_billion_laughs_file_cannot_exhaust_the_hub() -> None:
    from hub.registry.township_file import TownshipFileError, parse_township

    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n' \
           'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\ntownship: {name: t, villages: []}\n'
    with pytest.raises(TownshipFileError) as err:
        parse_township(bomb, filename="t.yaml")
    assert "aliases" in str(err.value.errors)


def test_a_star_inside_a_quoted_name_is_not_taken_for_an_alias() -> None:
    text = 'township:\n  villages:\n    - {id: v1, name: "-*"}\n  devices:\n    - {id: d1, kind: speaker, name: "*star"}\n'
    town = parse_township(text, fmt="yaml")
    assert [d.name for d in town.devices] == ["*star"]
