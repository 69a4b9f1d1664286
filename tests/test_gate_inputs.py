"""Broken settings and environment: one line on stderr, exit 2, nothing written."""
import pytest

from ci import exitcodes, gate


def usage_error(tmp_path, capsys, *args) -> str:
    """Run the gate in-process on the gate's fake cases; assert a usage error; its one line."""
    results = tmp_path / "out"
    code = gate.main(["--results", str(results), "--fuzz-seconds", "0", "--profile", "stock",
                      "--cases-dir", str(gate.REPO / "tests" / "gate_fixtures"), *args])
    out, err = capsys.readouterr()
    assert code == exitcodes.USAGE and out == "" and not results.exists()
    assert len(err.splitlines()) == 1 and err.startswith("gate: error: ")
    return err


@pytest.mark.parametrize("text", ["timeout=0\n", "timeout=-5\n", "timeout=soon\n"])
def test_bad_settings_timeout_is_a_usage_error(tmp_path, monkeypatch, capsys, text):
    """A timeout in ci/settings that is not a positive integer is refused in one line, exit 2."""
    settings = tmp_path / "settings"
    settings.write_text(text)
    monkeypatch.setattr(gate, "SETTINGS", settings)
    assert "timeout" in usage_error(tmp_path, capsys)


def test_settings_that_is_a_directory_is_a_usage_error(tmp_path, monkeypatch, capsys):
    """ci/settings as a directory is refused in one line naming it, exit 2 (not a traceback)."""
    monkeypatch.setattr(gate, "SETTINGS", tmp_path)
    assert f"{tmp_path}: cannot read" in usage_error(tmp_path, capsys)


@pytest.mark.parametrize("scale", ["0", "-2", "x"])
def test_bad_timeout_scale_is_a_usage_error(tmp_path, monkeypatch, capsys, scale):
    """FDR_TIMEOUT_SCALE that is not a positive integer is refused in one line, exit 2."""
    monkeypatch.setenv("FDR_TIMEOUT_SCALE", scale)
    assert "FDR_TIMEOUT_SCALE" in usage_error(tmp_path, capsys)
