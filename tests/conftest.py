import pytest


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch):
    """Runs trained by tests go to a temporary folder, never beside the committed ones."""
    from lib import paths
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("BAR_RUNS_DIR", str(tmp_path / "runs"))
