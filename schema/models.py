"""Base classes of fedgate's configuration models."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator


class StrictModel(BaseModel):
    """A configuration model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FileRelative(StrictModel):
    """A model whose relative paths are relative to the folder of the file it was loaded from.

    The loader passes that folder as ``base_dir`` in the validation context.
    """

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> FileRelative:
        base = (info.context or {}).get("base_dir")
        if base is not None:
            self._base_dir = Path(base)
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def resolve_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else (self._base_dir / path).resolve()
