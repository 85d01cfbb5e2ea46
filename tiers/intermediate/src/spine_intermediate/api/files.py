"""Which server files an API client may name: only those inside `SPINE_DATA_DIRS`.

A file param sent over HTTP is read by the server, so without this check any client could make
it read any file it can open. The CLI on the user's own machine does not go through here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from spine_core.errors import InvalidParams
from spine_core.registry import Registry

DATA_DIRS_OPTION = "data_dirs"
ALLOW_HINT = (
    f"set SPINE_{DATA_DIRS_OPTION.upper()} to a list of folders (separated by {os.pathsep!r})"
)


def data_dirs(options: Mapping[str, str]) -> tuple[Path, ...]:
    """The configured data folders, resolved (symlinks followed); none by default."""
    raw = options.get(DATA_DIRS_OPTION) or ""
    return tuple(Path(part).expanduser().resolve() for part in raw.split(os.pathsep) if part)


FILE_ANNOTATIONS = (Path, Path | None, list[Path])
"""Params typed so are files on the server: one path, or a list of paths (a backfill's)."""


def path_fields(registry: Registry, name: str) -> set[str]:
    """The params of `name` (a pipeline or workflow, or any of its steps) that name a file."""
    models: list[type[BaseModel]] = []
    workflow = registry.resolve(name)
    if isinstance(workflow.params_model, type) and issubclass(workflow.params_model, BaseModel):
        models.append(workflow.params_model)
    models += [registry.get_pipeline(step).params_model for step in workflow.pipelines()]
    return {
        field
        for model in models
        for field, info in model.model_fields.items()
        if info.annotation in FILE_ANNOTATIONS
    }


def checked_file_params(
    registry: Registry, name: str, params: Mapping[str, Any], allowed: tuple[Path, ...]
) -> dict[str, Any]:
    """`params` with each file param resolved, so the worker reads the very file checked here.

    Raises `InvalidParams` (422) for a file param that resolves outside every data folder.
    """
    errors: list[dict[str, str]] = []
    checked = dict(params)
    for field in sorted(path_fields(registry, name) & set(params)):
        value = params[field]
        if isinstance(value, list):
            checked[field] = [
                _checked_path(f"{field}[{i}]", item, allowed, errors)
                for i, item in enumerate(value)
            ]
        elif isinstance(value, str):
            checked[field] = _checked_path(field, value, allowed, errors)
    if errors:
        raise InvalidParams(name, errors)
    return checked


def _checked_path(
    field: str, value: Any, allowed: tuple[Path, ...], errors: list[dict[str, str]]
) -> Any:
    """The resolved path, or `value` as given with the reason it is refused in `errors`."""
    if not isinstance(value, str):
        return value  # not a path: the params model refuses it with its own message
    if "\x00" in value:
        errors.append({"field": field, "message": "contains a NUL byte"})
        return value
    if not allowed:
        errors.append(
            {
                "field": field,
                "message": f"the API allows no server files; {ALLOW_HINT}, "
                "or upload the file with POST /otc/files",
            }
        )
        return value
    resolved = Path(value).resolve()
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        errors.append(
            {
                "field": field,
                "message": f"the file is outside the server's data folders; {ALLOW_HINT}",
            }
        )
    return str(resolved)


UPLOAD_PATH = "/otc/files"
UPLOADS_FOLDER = "uploads"
DEFAULT_MAX_UPLOAD_BYTES = 1024**3
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""An upload's name: a plain file name, so it cannot point anywhere but its own folder."""


class UploadTooLarge(Exception):
    """The streamed body went over the upload limit; nothing was kept."""


async def store_upload(
    chunks: AsyncIterator[bytes], folder: Path, name: str, max_bytes: int
) -> Path:
    """Stream `chunks` to `folder/uploads/<sha256 prefix>/<name>`; return that path.

    The bytes go to a temporary file first and are renamed into place only when complete, so a
    refused or broken upload leaves nothing behind. The folder named after the content keeps
    the base name (the source a restatement is matched by) without clobbering another upload.
    """
    staging = folder / UPLOADS_FOLDER
    staging.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, temp_name = tempfile.mkstemp(dir=staging, prefix=".upload-")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
        target = staging / digest.hexdigest()[:16] / name
        target.parent.mkdir(exist_ok=True)
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
