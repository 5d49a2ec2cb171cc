"""The sample township (示范乡) and synthetic townships of any size. Deterministic (seeded).

`python -m hub.registry.sample > hub/data/township.yaml` regenerates the shipped sample;
`python -m hub.registry.sample --devices 100000 --format csv > big.csv` writes a large one
for load tests and benchmarks.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from typing import Final

from hub.registry.model import Device, Group, Kind, Township, Village
from hub.registry.township_file import to_csv, to_yaml

# A rural township north of Wuhan, Hubei (the hills of Huangpi): plausible, not a real place.
CENTRE: Final = (31.02, 114.40)
TOWNSHIP_NAME: Final = "示范乡"

VILLAGES: Final = [
    ("lijia", "李家村"), ("wangzhuang", "王庄村"), ("qingshan", "青山村"), ("zhangwan", "张湾村"),
    ("liushu", "柳树村"), ("shiqiao", "石桥村"), ("huangtugang", "黄土岗村"), ("fenglin", "枫林村"),
    ("shuanghe", "双河村"), ("taoyuan", "桃园村"), ("maanshan", "马鞍山村"), ("xintang", "新塘村"),
]
GROUPS_PER_VILLAGE: Final = [6, 5, 4, 6, 5, 4, 7, 5, 4, 5, 5, 4]  # 60 村民组
NUMERALS: Final = "一二三四五六七八九十"
QUIET_HOURS: Final = {"qingshan": "21:30-06:00", "maanshan": "21:00-06:30", "taoyuan": "22:00-05:30"}

VILLAGE_CAMERAS: Final = [
    "村委会门口", "文化广场", "小学路口", "水库大坝", "卫生室", "党群服务中心", "村口牌坊",
    "主干道桥头", "祠堂前", "垃圾转运站", "河堤", "老年活动中心", "幼儿园门口", "停车场",
    "山林防火瞭望点", "渡口", "光伏电站", "农贸市场",
]
GROUP_CAMERAS: Final = ["路口", "塘边", "晒谷场", "村道", "桥头", "后山路口"]
VILLAGE_SPEAKERS: Final = ["村委会楼顶", "文化广场", "小学旁", "水库管理房", "村口", "卫生室旁"]
GROUP_SPEAKERS: Final = ["晒谷场", "组部", "大樟树下", "路口电杆"]
LIGHT_SPOTS: Final = ["主干道路灯", "村委会路灯", "文化广场路灯", "桥头路灯"]
LIGHTS_PER_VILLAGE: Final = [4, 3, 3, 2, 3, 2, 4, 3, 2, 3, 3, 2]  # 34 street lamps, ~40 % solar
CAMERA_VENDORS: Final = [("hikvision", "/Streaming/Channels/101"), ("dahua", "/cam/realmonitor?channel=1&subtype=0"),
                         ("uniview", "/media/video1")]


def _offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / 111_320.0
    dlon = metres * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _near(rng: random.Random, lat: float, lon: float, radius_m: float) -> tuple[float, float]:
    return _offset(lat, lon, radius_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi))


def _group_name(i: int) -> str:
    return f"第{NUMERALS[i]}村民组" if i < 10 else f"第{i + 1}村民组"


def sample_township(seed: int = 2026, cameras: int = 150, speakers: int = 120) -> Township:
    """示范乡: 12 villages, 60 groups, `cameras` cameras and `speakers` speakers around CENTRE."""
    rng = random.Random(seed)
    villages: list[Village] = []
    groups: list[Group] = []
    slots: list[tuple[Kind, str, Village, Group | None, tuple[float, float]]] = []
    group_centres: dict[str, tuple[float, float]] = {}
    for i, ((vid, vname), ngroups) in enumerate(zip(VILLAGES, GROUPS_PER_VILLAGE, strict=True)):
        bearing = 2 * math.pi * i / len(VILLAGES) + rng.uniform(-0.2, 0.2)
        vlat, vlon = _offset(*CENTRE, rng.uniform(2500, 7000), bearing)
        village = Village(vid, vname, vlat, vlon, QUIET_HOURS.get(vid))
        villages.append(village)
        for g in range(ngroups):
            group = Group(f"{vid}-g{g + 1}", vid, _group_name(g))
            groups.append(group)
            group_centres[group.id] = _near(rng, vlat, vlon, 900)
    # Spread the devices: village-level landmarks first, then each group's own spots.
    village_groups = {v.id: [g for g in groups if g.village == v.id] for v in villages}
    plan: list[tuple[Kind, int, list[str], list[str]]] = [
        ("camera", cameras, VILLAGE_CAMERAS, GROUP_CAMERAS),
        ("speaker", speakers, VILLAGE_SPEAKERS, GROUP_SPEAKERS),
    ]
    for kind, total, vnames, gnames in plan:
        per_village = [total // len(villages) + (1 if i < total % len(villages) else 0)
                       for i in range(len(villages))]
        for village, n in zip(villages, per_village, strict=True):
            vgroups = village_groups[village.id]
            n_landmarks = min(len(vnames), max(2, n // 3))
            landmarks = [vnames[0], *rng.sample(vnames[1:], n_landmarks - 1)]
            for j in range(n):
                if j < n_landmarks:
                    slots.append((kind, landmarks[j], village, None, (village.lat or 0.0, village.lon or 0.0)))
                else:
                    grp = vgroups[(j - n_landmarks) % len(vgroups)]
                    spot = gnames[((j - n_landmarks) // len(vgroups)) % len(gnames)]
                    slots.append((kind, grp.name + spot, village, grp, group_centres[grp.id]))
    devices: list[Device] = []
    counters: dict[tuple[str, str], int] = {}
    for kind, name, village, maybe_group, (clat, clon) in slots:
        key = (kind, village.id)
        counters[key] = counters.get(key, 0) + 1
        n = counters[key]
        prefix = "cam" if kind == "camera" else "spk"
        lat, lon = _near(rng, clat, clon, 350 if maybe_group is None else 250)
        vindex = VILLAGES.index((village.id, village.name))
        if kind == "camera":
            vendor, path = CAMERA_VENDORS[rng.randrange(len(CAMERA_VENDORS))]
            url: str | None = f"rtsp://10.{20 + vindex}.1.{10 + n}:554{path}"
            tags = {"vendor": vendor, "installed": str(rng.choice([2021, 2022, 2023, 2024, 2025])),
                    "power": rng.choice(["mains", "mains", "mains", "solar"])}
        else:
            url = None
            tags = {"mount": rng.choice(["pole", "pole", "roof"]),
                    "power": rng.choice(["mains", "mains", "solar"])}
        devices.append(Device(f"{prefix}-{village.id}-{n:02d}", kind, name, village.id,
                              maybe_group.id if maybe_group else None, lat, lon, tags, url))
    # The township seat itself (乡政府, 集镇) belongs to no village.
    seat: list[tuple[Kind, str, str]] = [("camera", "cam-xiang-01", "乡政府大门"), ("camera", "cam-xiang-02", "集镇十字路口"),
            ("speaker", "spk-xiang-01", "集镇广场")]
    for kind, did, name in seat:
        lat, lon = _near(rng, *CENTRE, 300)
        url = f"rtsp://10.19.1.{11 + len(devices) % 50}:554/Streaming/Channels/101" if kind == "camera" else None
        devices.append(Device(did, kind, name, None, None, lat, lon, {"site": "township-seat"}, url))
    return Township(TOWNSHIP_NAME, villages, groups, devices + sample_lights(villages))


def sample_lights(villages: list[Village], seed: int = 14) -> list[Device]:
    """Street lamps along each village's main road, from the village centre towards the township
    seat, ~120 m apart (their own seeded generator, so the other devices stay as they were)."""
    rng = random.Random(seed)
    out: list[Device] = []
    for village, n in zip(villages, LIGHTS_PER_VILLAGE, strict=True):
        vlat, vlon = village.lat or CENTRE[0], village.lon or CENTRE[1]
        towards = math.atan2((CENTRE[1] - vlon) * math.cos(math.radians(vlat)), CENTRE[0] - vlat)
        for k in range(n):
            lat, lon = _offset(vlat, vlon, 60 + 120 * k, towards + rng.uniform(-0.15, 0.15))
            solar = rng.random() < 0.4
            out.append(Device(f"lamp-{village.id}-{k + 1:02d}", "light", f"{LIGHT_SPOTS[k % len(LIGHT_SPOTS)]}",
                              village.id, None, lat, lon,
                              {"power": "solar" if solar else "mains", "rated_w": "30" if solar else "60",
                               "installed": str(rng.choice([2023, 2024, 2025]))}))
    return out


def synthetic_township(devices: int, *, villages: int = 200, groups_per_village: int = 10,
                       seed: int = 1) -> Township:
    """A large township for load tests: `devices` devices, 60 % cameras, spread over villages."""
    rng = random.Random(seed)
    vs = [Village(f"v{i:04d}", f"测试{i}村", *_near(rng, *CENTRE, 20_000)) for i in range(villages)]
    gs = [Group(f"v{i:04d}-g{j:02d}", v.id, _group_name(j)) for i, v in enumerate(vs)
          for j in range(groups_per_village)]
    ds = []
    for n in range(devices):
        g = gs[n % len(gs)]
        kind: Kind = "camera" if n % 5 < 3 else "speaker"
        ds.append(Device(f"d{n:06d}", kind, f"设备{n}", g.village, g.id,
                         *_near(rng, *CENTRE, 20_000), {"batch": str(n // 1000)},
                         f"rtsp://10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}:554/s" if kind == "camera"
                         else None))
    return Township("合成乡", vs, gs, ds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=0, help="a synthetic township of this size")
    parser.add_argument("--format", choices=["yaml", "csv"], default="yaml")
    args = parser.parse_args(argv)
    town = synthetic_township(args.devices) if args.devices else sample_township()
    out = to_csv(town) if args.format == "csv" else to_yaml(town)
    if args.format == "yaml" and not args.devices:
        out = ("# 示范乡 — the VillageHub sample township (generated by python -m hub.registry.sample).\n"
               "# Format: docs/registry.md. Coordinates are plausible, not surveyed; stream URLs are\n"
               "# private example addresses.\n") + out
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
