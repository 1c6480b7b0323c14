"""`sdpipe check` lists every problem of a file: mistakes under their key, and unset variables as well."""

from __future__ import annotations


def test_unset_warning_shown_with_mistakes(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("SDPIPE_UNSET_FOR_TEST", raising=False)
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[options]\ninput = ["${SDPIPE_UNSET_FOR_TEST}"]\ngrup-by = "date"\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert "options.grup-by: unknown option" in result.stderr
    assert f"{job}: warning: not set here: SDPIPE_UNSET_FOR_TEST (options.input)" in result.stderr


def test_workers_zero_is_reported_under_its_key(run_cli, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[cluster]\nworkers = 0\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert "  cluster.workers: " in result.stderr
    assert "  cluster: " not in result.stderr
