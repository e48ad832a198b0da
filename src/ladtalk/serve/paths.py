"""The server's data folder (layout: docs/serve.md), the only way a request's name becomes a path: a name must match
NAME_RE (no '..', '/', absolute or hidden paths) and resolve inside its folder (no planted symlink leads out)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from pathlib import Path

from ladtalk.errors import InputError

NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
FOLDERS = ("uploads", "identities", "models", "jobs")


class NotFound(InputError):
    """A well-formed name that names nothing (HTTP 404)."""


def check_name(name: object, what: str) -> str:
    """`name` if it is a plain file name; otherwise an InputError that says what a name may hold."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise InputError(f"{what} {name!r} is not a valid name: use 1-64 letters, digits, '-', '_' or '.', "
                         "not starting with '.' (no folders, no '..')")
    return name


def check_choice(value, choices, what: str):
    """`value` if it is one of `choices`; otherwise an InputError naming `what`, the value and the choices."""
    if value not in list(choices):
        raise InputError(f"{what} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


ERRNO_RE = re.compile(r"\[Errno -?\d+\]\s*|\s*\(?errno[ =:]-?\d+\)?", re.IGNORECASE)


def public_message(text: str, root: Path) -> str:
    """A message for the page: the data folder as DATA, no errno numbers (they only show how the server is laid out)."""
    return ERRNO_RE.sub("", text).replace(f"{root}/", "DATA/").replace(str(root), "DATA")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def read_json(path: Path, default=None):
    """The JSON in `path`, or `default` where it is missing or unreadable (being replaced, damaged)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def write_json(path: Path, obj) -> None:
    """Write JSON under a temporary name and rename it: a reader (or a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(obj, default=str))
    os.replace(tmp, path)


class DataDir:
    """The server's own folder; all paths a request can reach are built here."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        for sub in FOLDERS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def folder(self, sub: str) -> Path:
        assert sub in FOLDERS
        return self.root / sub

    def inside(self, sub: str, name: object, what: str = "name") -> Path:
        """DATA_DIR/sub/name, an existing entry for a checked name; refuses what resolves outside (symlinks too)."""
        path = self.folder(sub) / check_name(name, what)
        if path.is_symlink() or not path.resolve().is_relative_to(self.folder(sub)):
            raise InputError(f"{what} {name!r} is outside the server's data folder")
        if not path.exists():
            raise NotFound(f"no {what} {name!r}")
        return path

    def upload(self, upload_id: object) -> Path:
        """The stored file of an upload id (as returned by POST /api/uploads)."""
        name = check_name(upload_id, "upload id")
        matches = [p for p in self.folder("uploads").glob(f"{name}.*") if p.is_file() and not p.is_symlink()]
        if len(matches) != 1:
            raise NotFound(f"no upload {name!r}; send the file to POST /api/uploads first")
        return matches[0]

    def upload_record(self, path: Path) -> dict:
        """What was recorded when the upload was received: id, kind, bytes, the client's name, seconds, ..."""
        return read_json(path.with_name(f".{path.stem}.json")) or {
            "id": path.stem, "kind": None, "bytes": path.stat().st_size, "name": path.name}

    def uploads(self) -> list[dict]:
        """Every stored upload's record, newest first."""
        records = []
        for p in self.folder("uploads").iterdir():
            if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
                with contextlib.suppress(OSError):  # deleted while we listed
                    records.append({**self.upload_record(p), "id": p.stem, "created": p.stat().st_mtime})
        return sorted(records, key=lambda r: r["created"], reverse=True)
