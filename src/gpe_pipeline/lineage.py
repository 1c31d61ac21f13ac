"""Which MLflow run last wrote each persisted catalog entry: data/lineage.json, read and written atomically.

The MLflow hook tags a run with the runs that produced its inputs (`upstream.<entry>`), so a `kedro run
--pipeline=train_flow` names the run whose encoder and latents it read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gpe_pipeline.core.files import write_text_atomically

logger = logging.getLogger(__name__)

LINEAGE_FILE = Path("data") / "lineage.json"


def read_lineage(project: Path) -> dict[str, str]:
    """{catalog entry: MLflow run id} of a project; empty when there is no file or it cannot be read (with a warning)."""
    path = project / LINEAGE_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        logger.warning("ignoring the unreadable lineage file %s", path)
        return {}


def record_lineage(project: Path, saved: dict[str, str]) -> None:
    """Add {entry: run id} to the project's lineage, replacing the file atomically (temp file + rename)."""
    lineage = {**read_lineage(project), **saved}
    write_text_atomically(project / LINEAGE_FILE, json.dumps(lineage, indent=1, sort_keys=True))
