"""Data sources behind the data API contract: the built-in generator, a CSV/Parquet file
(``files``), or a remote data API (``http``); what they share in ``base``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_cli.pipeline.sources.base import Answer, DataSource, IndexedSource
from mlops_cli.pipeline.sources.files import FileSource, GeneratorSource
from mlops_cli.pipeline.sources.http import HttpSource, is_end_of_data

if TYPE_CHECKING:
    from mlops_cli.config import Settings

__all__ = ["Answer", "DataSource", "FileSource", "GeneratorSource", "HttpSource", "IndexedSource", "is_end_of_data"]


def open_source(settings: Settings) -> DataSource:
    """The source named by ``MLOPS_DATA_SOURCE``."""
    spec = settings.data_source
    if spec == "generator":
        return GeneratorSource(settings)
    if spec.startswith("csv:"):
        return FileSource(Path(spec[4:]).expanduser(), settings.generator_batches)
    return HttpSource(spec, settings)
