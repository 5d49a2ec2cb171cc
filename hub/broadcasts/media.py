"""Broadcast audio: uploads checked by size and by content (mutagen), hub-side TTS (espeak-ng).

Files live in `<VH_DATA_DIR>/media/{sha256}` with a small JSON sidecar; speakers fetch them
over HTTP at `GET /media/{sha256}` (PROTOCOL §6 `audio` media carries url, sha256, duration_s).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import mutagen

if TYPE_CHECKING:
    from hub.broadcasts.model import BroadcastSpec

# mutagen's detected type → the Content-Type served to speakers.
AUDIO_TYPES: Final[dict[str, str]] = {
    "MP3": "audio/mpeg", "EasyMP3": "audio/mpeg", "WAVE": "audio/wav", "OggVorbis": "audio/ogg",
    "OggOpus": "audio/ogg", "FLAC": "audio/flac", "MP4": "audio/mp4", "EasyMP4": "audio/mp4",
    "AAC": "audio/aac",
}
SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
TTS_VOICES: Final[dict[str, str]] = {"zh": "cmn", "cmn": "cmn", "en": "en", "yue": "yue"}
TTS_MAX_CHARS: Final = 2000
TTS_TIMEOUT_S: Final = 30.0


class MediaError(ValueError):
    """Refused media; `field` names what to fix, `reason` is the metrics label."""

    def __init__(self, reason: str, message: str, field: str = "media") -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class MediaInfo:
    sha256: str
    content_type: str
    bytes: int
    duration_s: float
    filename: str

    def as_media(self, base_url: str) -> dict[str, Any]:
        """The PROTOCOL §6 `audio` media object."""
        return {"type": "audio", "url": f"{base_url.rstrip('/')}/media/{self.sha256}",
                "sha256": self.sha256, "duration_s": round(self.duration_s, 3)}


def inspect_audio(data: bytes, max_bytes: int) -> tuple[str, float]:
    """(content type, duration) judged from the bytes themselves, never from the file name."""
    if not data:
        raise MediaError("empty", "the file is empty", "file")
    if len(data) > max_bytes:
        raise MediaError("too_large", f"the file has {len(data)} bytes; at most {max_bytes}", "file")
    try:
        audio = mutagen.File(io.BytesIO(data))
    except Exception:  # mutagen raises many types on garbage
        audio = None
    if audio is None or type(audio).__name__ not in AUDIO_TYPES:
        raise MediaError("unsupported_type",
                         "not a recognised audio file (MP3, WAV, Ogg, FLAC, MP4/AAC)", "file")
    length = float(getattr(audio.info, "length", 0.0) or 0.0)
    if length <= 0:
        raise MediaError("no_duration", "the audio has no duration", "file")
    return AUDIO_TYPES[type(audio).__name__], length


class MediaStore:
    def __init__(self, directory: Path | str, base_url: str,
                 max_bytes: int = 20 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url
        self.max_bytes = max_bytes

    def add(self, data: bytes, filename: str = "") -> MediaInfo:
        content_type, duration = inspect_audio(data, self.max_bytes)
        digest = hashlib.sha256(data).hexdigest()
        info = MediaInfo(digest, content_type, len(data), duration, os.path.basename(filename)[:200])
        target = self.dir / digest
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        (self.dir / f"{digest}.json").write_text(json.dumps(asdict(info)))
        return info

    def get(self, sha256: str) -> MediaInfo | None:
        if not SHA256_RE.fullmatch(sha256):
            return None
        meta = self.dir / f"{sha256}.json"
        if not meta.exists() or not (self.dir / sha256).exists():
            return None
        return MediaInfo(**json.loads(meta.read_text()))

    def path(self, sha256: str) -> Path | None:
        return self.dir / sha256 if self.get(sha256) is not None else None

    def tts(self, text: str, lang: str = "zh") -> MediaInfo:
        """Synthesise `text` on the hub with espeak-ng (for speakers that cannot)."""
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise MediaError("tts_unavailable", "hub-side TTS needs espeak-ng installed on the hub")
        if not text.strip() or len(text) > TTS_MAX_CHARS:
            raise MediaError("bad_text", f"text must be 1–{TTS_MAX_CHARS} characters", "media.text")
        if any(ord(c) < 32 and c not in "\n\t" for c in text):
            raise MediaError("bad_text", "text must not contain control characters", "media.text")
        voice = TTS_VOICES.get(lang)
        if voice is None:
            raise MediaError("bad_lang", f"lang must be one of {', '.join(TTS_VOICES)}", "media.lang")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "tts.wav"
            try:
                proc = subprocess.run([exe, "-v", voice, "-w", str(out), "--", text],
                                      capture_output=True, timeout=TTS_TIMEOUT_S, check=False)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                raise MediaError("tts_failed", f"espeak-ng could not run: {exc}") from None
            if proc.returncode != 0 or not out.exists():
                raise MediaError("tts_failed",
                                 f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}")
            return self.add(out.read_bytes(), "tts.wav")

    def resolve(self, media: dict[str, Any]) -> dict[str, Any]:
        """API media → the §6 media object sent to speakers."""
        if media.get("type") == "tts":
            if media.get("render") == "hub":
                return self.tts(str(media.get("text", "")), str(media.get("lang", "zh"))).as_media(
                    self.base_url)
            return {"type": "tts", "text": media["text"], "lang": media.get("lang", "zh")}
        sha = str(media.get("sha256", ""))
        info = self.get(sha)
        if info is not None:
            out = info.as_media(self.base_url)
            if media.get("url"):
                out["url"] = media["url"]
            return out
        if not media.get("url") or not media.get("duration_s"):
            raise MediaError("unknown_media",
                             "media.sha256 is not an uploaded file; upload it first "
                             "(POST /api/v1/media) or give url and duration_s", "media.sha256")
        return {k: media[k] for k in ("type", "url", "sha256", "duration_s")}

    def resolve_spec(self, spec: BroadcastSpec) -> BroadcastSpec:
        return replace(spec, media=self.resolve(spec.media))
