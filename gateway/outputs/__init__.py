"""vidgate's own copies of finished outputs: storage (`storage.py`), content checks
(`checks.py`) and the copier that fills the one from upstream links (`copier.py`)."""

from gateway.outputs.checks import (
    EXTENSIONS,
    ContentCheckFailed,
    check_image,
    check_mp4,
)
from gateway.outputs.copier import (
    VARIANTS,
    CopyReport,
    OutputCopier,
    Source,
    SourceError,
)
from gateway.outputs.storage import (
    InvalidKey,
    InvalidRange,
    LocalDiskStorage,
    ObjectInfo,
    ObjectStream,
    ObjectTooLarge,
    OutputError,
    OutputStorage,
    StoredObject,
    validate_key,
)

__all__ = [
    "EXTENSIONS",
    "VARIANTS",
    "ContentCheckFailed",
    "CopyReport",
    "InvalidKey",
    "InvalidRange",
    "LocalDiskStorage",
    "ObjectInfo",
    "ObjectStream",
    "ObjectTooLarge",
    "OutputCopier",
    "OutputError",
    "OutputStorage",
    "Source",
    "SourceError",
    "StoredObject",
    "check_image",
    "check_mp4",
    "validate_key",
]
