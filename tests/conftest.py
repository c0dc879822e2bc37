"""Shared fixtures: the real rows in ../shared/data (skipped with a reason when absent) and a private cache."""

from __future__ import annotations

import os
from pathlib import Path

# Before any test module imports torch: its OpenMP workers sleep instead of spinning while they wait, which
# keeps 2 threads usable on a busy 2-core machine (see iotids/__init__.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real CICIDS2017 rows, the corrected release and the pcaps."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see DEVELOPERS.md: CI has it beside the clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cicids2017_dir(shared_data: Path) -> Path:
    return shared_data / "cicids2017"


@pytest.fixture(scope="session")
def improved_dir(shared_data: Path) -> Path:
    return shared_data / "cicids2017-improved"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session caches into its own directory, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("IOTIDS_CACHE_DIR", str(tmp_path_factory.mktemp("iotids-cache")))
    yield
    mp.undo()
