"""Cache and download helper: fetch a file once, verify its checksum, fail with a message that says how to fix it.

Set ``PLASTICLAB_OFFLINE=1`` to forbid all downloads (missing files then raise :class:`DataError`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

from .base import DataError

OFFLINE_ENV = "PLASTICLAB_OFFLINE"
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def offline() -> bool:
    """True when ``$PLASTICLAB_OFFLINE`` forbids downloading (``1``, ``true``, ``yes`` or ``on``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def file_digest(path: str | Path, algorithm: str = "md5", decompress: bool = False) -> str:
    """Hex digest of a file; with ``decompress`` a gzipped file is hashed by its decompressed content."""
    path = Path(path)
    h = hashlib.new(algorithm)
    opener = gzip.open if decompress and is_gzip(path) else open
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path} is not a valid gzip file ({err}); delete it so it is downloaded again, "
                        f"or replace it with a correct copy.") from err
    return h.hexdigest()


def md5_file(path: str | Path, decompress: bool = False) -> str:
    """MD5 hex digest of a file (of its gunzipped content with ``decompress``)."""
    return file_digest(path, "md5", decompress)


def sha256_file(path: str | Path, decompress: bool = False) -> str:
    """SHA-256 hex digest of a file (of its gunzipped content with ``decompress``)."""
    return file_digest(path, "sha256", decompress)


def _fix_hint(dest: Path, url: str | None) -> str:
    src = f" from {url}" if url else ""
    return (f"download it by hand{src} and place it at {dest}, "
            f"or point --data-dir / $PLASTICLAB_DATA at a folder that already holds a correct copy")


def _mismatch(path: Path, md5: str | None, sha256: str | None, decompress: bool) -> str | None:
    """Describe the first checksum that does not match, or None when all match."""
    what = " of the decompressed content" if decompress else ""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm, decompress)
        if actual.lower() != expected.lower():
            return f"expected {algorithm}{what} {expected.lower()}, got {actual}"
    return None


def check_file(path: str | Path, md5: str | None = None, sha256: str | None = None, *,
               decompress: bool = False, url: str | None = None, note: str = "") -> Path:
    """Raise :class:`DataError` unless the file's checksums match; return the path.

    With ``decompress`` the checksums refer to the gunzipped content of a gzipped file
    (an uncompressed file is hashed as is).
    """
    path = Path(path)
    problem = _mismatch(path, md5, sha256, decompress)
    if problem:
        raise DataError(
            f"checksum mismatch for {path.name} ({path}): {problem}. The file is corrupt, incomplete or "
            f"a different version. To fix: delete {path} so it is downloaded again, or {_fix_hint(path, url)}."
            + (f" {note}" if note else ""))
    return path


def atomic_copy(src: BinaryIO, dest: Path) -> Path:
    """Stream ``src`` into ``dest`` through a temporary file in the same folder, then rename atomically."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def fetch(url: str, dest: str | Path, md5: str | None = None, sha256: str | None = None, *,
          decompress: bool = False, note: str = "", timeout: float = 60.0) -> Path:
    """Return ``dest``, downloading it from ``url`` first if it does not exist.

    An existing file is verified against the given checksums and a mismatch raises
    :class:`DataError` (it is never silently overwritten). A download goes to a
    temporary file that is checked and then renamed onto ``dest``, so ``dest`` only
    ever holds a verified file. ``decompress``: the checksums refer to the gunzipped
    content. ``note`` is appended to error messages. Raises :class:`DataError` when
    downloading is forbidden (``$PLASTICLAB_OFFLINE=1``) or fails.
    """
    dest = Path(dest).expanduser()
    extra = f" {note}" if note else ""
    if dest.is_file():
        return check_file(dest, md5, sha256, decompress=decompress, url=url, note=note)
    if offline():
        raise DataError(f"{dest.name} not found in {dest.parent} and downloading is disabled "
                        f"(${OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)}). To fix: {_fix_hint(dest, url)}.{extra}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as err:
        raise DataError(f"cannot write {dest.name} into the data folder {dest.parent} ({err}). "
                        f"To fix: {_fix_hint(dest, url)}.{extra}") from err
    print(f"plasticlab: downloading {url} -> {dest}", file=sys.stderr)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "plasticlab"})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    shutil.copyfileobj(response, out, _CHUNK)
            except (urllib.error.URLError, OSError, ValueError) as err:
                raise DataError(f"download of {url} failed ({err}); {dest.name} is missing from {dest.parent}. "
                                f"To fix: {_fix_hint(dest, url)}.{extra}") from err
        problem = _mismatch(tmp, md5, sha256, decompress)
        if problem:
            raise DataError(f"the file downloaded from {url} for {dest.name} failed its checksum ({problem}); "
                            f"it was not saved. Retry later, or {_fix_hint(dest, url)}.{extra}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
