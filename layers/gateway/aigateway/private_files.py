"""Files the gateway keeps on local disk (generated images, spooled usage records): owner-only.

The data folder is 0700, but a file is created with the process umask (often 0644) and a folder
made inside it with 0755: one `chmod` of the parent, or a copy of the folder, would expose every
image and usage record. So each folder is made 0700 and each file is created 0600 from the start
(never written first and narrowed after), then moved into place atomically.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_folder(folder: Path) -> Path:
    """`folder`, created if missing, mode 0700."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_private(final: Path, data: bytes, tmp_suffix: str = ".tmp") -> None:
    """Write `data` to `final` (mode 0600) through a temporary file, replacing it atomically."""
    private_folder(final.parent)
    tmp = final.with_name(final.name + tmp_suffix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its old mode through O_CREAT
    os.replace(tmp, final)
