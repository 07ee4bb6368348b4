"""Where the real corpus samples live: ``$INSTANCEHMR_REAL_SAMPLES``, by default the folder
``shared/fixtures/real`` beside the repository (a clone of the repository alone lacks it).

Tests that read them carry ``@pytest.mark.real_samples`` and are skipped, saying why, when the
folder is missing (``tests/conftest.py``); every format is also tested on files the tests write.
"""

from __future__ import annotations

import os
from pathlib import Path

REAL_SAMPLES = Path(
    os.environ.get("INSTANCEHMR_REAL_SAMPLES")
    or Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
)
MISSING = (
    f"real corpus samples not found at {REAL_SAMPLES}: set INSTANCEHMR_REAL_SAMPLES to a folder "
    "holding coco/, crowdpose/, h36m/, mpi_inf_3dhp/ and mpii/ (the annotation samples of "
    "mmpose's tests/data, https://github.com/open-mmlab/mmpose, with their images)"
)
