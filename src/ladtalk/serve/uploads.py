"""Receiving a file: streamed to disk under a generated name, size-limited, and accepted only for what its bytes are.

The type is decided by the first bytes, never by the client's file name (so FFmpeg is never handed a playlist or a
text file that points at other files); media must then hold the stream the upload is for, read to the end (a file
cut short is refused) and decode. Weights must be a torch zip or safetensors file, only ever loaded without code.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import av
from starlette.concurrency import run_in_threadpool

from ladtalk.errors import InputError
from ladtalk.serve.paths import DataDir, check_choice, new_id, write_json

EXTS = {"video": (".mp4", ".mov", ".webm", ".avi"), "audio": (".wav", ".mp3", ".m4a", ".mp4", ".ogg", ".flac",
        ".webm", ".mov"), "weights": (".pth", ".safetensors")}
MAGIC = {b"\x1a\x45\xdf\xa3": ".webm", b"OggS": ".ogg", b"fLaC": ".flac", b"ID3": ".mp3",  # .webm: also Matroska
         b"PK\x03\x04": ".pth"}  # .pth: torch.save's zip archive


class TooLarge(InputError):
    """The upload is over the server's size limit (HTTP 413)."""

    def __init__(self, max_bytes: int):
        super().__init__(f"the upload is larger than this server's limit of {max_bytes / 2**20:.0f} MiB; "
                         "send a shorter clip or start the server with a larger --max-upload-mb")


def sniff(head: bytes) -> str | None:
    """The container a file's first bytes show, as the file extension we store it under, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return ".mov" if brand == b"qt  " else ".m4a" if brand in (b"M4A ", b"M4B ") else ".mp4"
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI "):
        return ".wav" if head[8:12] == b"WAVE" else ".avi"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return ".mp3"  # an MPEG audio frame without an ID3 tag
    if ext := next((ext for magic, ext in MAGIC.items() if head.startswith(magic)), None):
        return ext
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return ".safetensors"
    return None


def media_facts(path: Path, kind: str) -> dict:
    """The streams and real length (demuxed to the end) of an upload; InputError when not `kind` media or cut short."""
    what = "send an MP4, MOV, WebM or AVI video, or WAV, MP3, M4A, OGG or FLAC audio"
    try:
        with av.open(str(path)) as container:
            video, audio = container.streams.video, container.streams.audio
            nominal = float(container.duration / 1e6) if container.duration else None
            if kind == "video" and not video:
                raise InputError("the file has no video stream; send a video of the person")
            if kind == "audio" and not audio:
                raise InputError("the file has no audio stream; send speech audio")
            stream, end, decoded = (video if kind == "video" else audio)[0], 0.0, 0
            for packet in container.demux(stream):
                if decoded < 3:
                    decoded += len(packet.decode())
                if packet.pts is not None and packet.size:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            seconds = max(0.0, end - start)
    except (av.FFmpegError, OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise InputError(f"the file is not readable {kind} ({reason}); {what}") from e
    if seconds <= 0:
        raise InputError(f"the file's {kind} stream holds no {'frames' if kind == 'video' else 'samples'}; {what}")
    if nominal and seconds < nominal - max(0.5, 0.02 * nominal):
        raise InputError(f"the file is cut short: its header announces {nominal:.1f} s but its data end after "
                         f"{seconds:.1f} s (an interrupted download or copy?); send the whole file")
    return {"seconds": round(seconds, 3), "has_video": bool(video), "has_audio": bool(audio)}


async def receive(data: DataDir, kind: str, chunks: AsyncIterator[bytes], max_bytes: int,
                  client_name: str = "") -> dict:
    """Stream `chunks` into DATA_DIR/uploads under a generated name and return its record; nothing stays if refused."""
    check_choice(kind, EXTS, "upload kind")
    upload_id = new_id()
    tmp = data.folder("uploads") / f".{upload_id}.partial"
    size, head = 0, b""
    try:
        with open(tmp, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(max_bytes)
                head = (head + chunk[:16])[:16]  # what sniff reads
                f.write(chunk)
        if size == 0:
            raise InputError("the upload is empty; send the file's bytes as the request body")
        if (ext := sniff(head)) not in EXTS[kind]:
            raise InputError(f"the file's content is not {'a' if kind == 'video' else ''} {kind} this server "
                             f"accepts (allowed: {', '.join(EXTS[kind])}, recognised by content, not by name)")
        # reading a large file through takes a moment: not on the event loop
        facts = await run_in_threadpool(media_facts, tmp, kind) if kind != "weights" else {}
        path = tmp.with_name(f"{upload_id}{ext}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record = {"id": upload_id, "kind": kind, "bytes": size, "name": Path(client_name).name[:200], **facts}
    write_json(path.with_name(f".{upload_id}.json"), record)
    return record
