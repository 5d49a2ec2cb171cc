// Recurrence presets → RFC 5545 RRULE, and the broadcast body of PROTOCOL §7 (pure).
export const PRESETS = {
  once: null,
  daily: "FREQ=DAILY",
  weekdays: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
  weekly: "FREQ=WEEKLY",
  daily7: "FREQ=DAILY;COUNT=7",
  hourly3: "FREQ=HOURLY;COUNT=3",
};

/** "+08:00" for an offset in minutes. */
export function offsetSuffix(minutes) {
  const sign = minutes < 0 ? "-" : "+";
  const m = Math.abs(minutes);
  return `${sign}${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/** A datetime-local value ("2026-12-01T07:30") in the township zone → ISO 8601 with offset. */
export function localToIso(value, offsetMinutes) {
  const v = value.length === 16 ? `${value}:00` : value;
  return `${v}${offsetSuffix(offsetMinutes)}`;
}

export function buildBroadcast({ title, text, lang = "zh", all, villages, groups, devices = [], priority, volume, repeat, startLocal, preset, offsetMinutes, nowLocal }) {
  const body = {
    title: title.trim(),
    media: { type: "tts", text: text.trim(), lang },
    targets: { all: Boolean(all), villages: all ? [] : villages, groups: all ? [] : groups, devices: all ? [] : devices },
    priority: Number(priority),
    volume: Number(volume),
    repeat: Number(repeat),
  };
  const rrule = PRESETS[preset] ?? null;
  if (startLocal || rrule) {
    body.schedule = { start: localToIso(startLocal || nowLocal, offsetMinutes) };
    if (rrule) body.schedule.rrule = rrule;
  }
  return body;
}

export function hasTargets(body) {
  const t = body.targets;
  return t.all || t.villages.length > 0 || t.groups.length > 0 || t.devices.length > 0;
}
