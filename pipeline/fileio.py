"""Writing files so that a crash never leaves half of one, reading them back checked, errors on one line.

`read_back` is the one way a run's files are read back: a file that cannot be parsed or fails its check
is set aside (`<name>.bad-<UTC time>`, nothing is deleted) and `DamagedFile` names it in one line; the
caller either trains the run again or stops with that line.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

__all__ = ["DamagedFile", "PathError", "one_line", "probe_writable", "read_back", "set_aside", "set_aside_damaged",
           "write_atomic"]

T = TypeVar("T")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message squeezed onto one line (its type name if it has none)."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class PathError(ValueError):
    """A directory that cannot be written; the message is one line naming it."""


def probe_writable(directory: Path | str, what: str) -> None:
    """Create `directory` if needed and write and remove a file in it; PathError naming `what` if that fails."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PathError(f"{what} {directory} is not a writable directory ({type(e).__name__}: {one_line(e)}); "
                        "choose another path") from None


def set_aside(path: Path | str) -> Path:
    """Rename a damaged file (or a directory standing where a file belongs) to `<name>.bad-<UTC time>` beside it.

    Nothing is deleted: the caller reports the new name in one line and writes a fresh file.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    os.replace(path, target)
    return target


class DamagedFile(OSError):
    """A file read back that is unusable, already set aside; the message is one line naming it and its copy."""


def set_aside_damaged(path: Path | str, problem: str) -> DamagedFile:
    """Set `path` aside (`set_aside`) and return the one-line DamagedFile saying `path problem; set aside as …`."""
    return DamagedFile(f"{path} {problem}; set aside as {set_aside(path).name}")


def read_back(path: Path | str, parse: Callable[[bytes], T]) -> T:
    """`parse` of the bytes of the file at `path`; `parse` raises on anything it finds wrong.

    A file that `parse` refuses (or a directory in its place) is set aside and DamagedFile raised; an error
    reading it (a missing file, a failing disk) propagates as it is.
    """
    try:
        return parse(Path(path).read_bytes())
    except IsADirectoryError:
        problem = "is a directory, not a file"
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a parser raises, the file is damaged
        problem = f"is damaged ({type(e).__name__}: {one_line(e, 120)})"
    raise set_aside_damaged(path, problem)
