"""The console commands, in process against the session's local Ray: run, runs, inspect, and clear errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

from click.testing import CliRunner
from conftest import encode, textured, write_jsonl

from dataengine.cli import main


def invoke(storage, *args):
    return CliRunner().invoke(main, ["--storage", str(storage), *args], catch_exceptions=False)


def test_run_runs_inspect(ray_local, tmp_path):
    data = tmp_path / "in[/]put"  # printed as written: rich would read "[/]" as a closing tag
    (data / "img").mkdir(parents=True)
    recs = []
    for i in range(3):
        (data / "img" / f"{i}.png").write_bytes(encode(textured(200 + i), "PNG"))
        recs.append({"image": f"img/{i}.png", "caption": f"An abstract colourful texture, sample number {i}."})
    recs.append({"image": "img/missing.png", "caption": "A caption for a file that is not there."})
    write_jsonl(data / "a.jsonl", recs)
    storage = tmp_path / "storage"

    res = invoke(storage, "run", "clean", "--input", str(data), "--set", "ray.progress=false")
    assert res.exit_code == 0, res.output
    assert "accepted 3" in res.output and "missing_file" in res.output and "accounting OK" in res.output
    run_id = re.search(r"run (\S+) \(complete\)", res.output).group(1)

    listing = invoke(storage, "runs")
    assert run_id[:20] in listing.output and "complete" in listing.output

    shown = invoke(storage, "inspect", run_id)
    assert shown.exit_code == 0
    assert "inputs 4  accepted 3  rejected 1" in shown.output and "missing_file" in shown.output
    assert "op: dedup" in shown.output  # the run's config
    assert f"input     {data}" in shown.output


def one_line_error(res, *words: str) -> None:
    """A user's mistake: exit 1, one `Error:` line naming it (and one line per invalid field), no traceback; a run's
    progress view may come before it."""
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    lines = res.output.strip().splitlines()
    lines = lines[max(i for i, line in enumerate(lines) if line.startswith("Error: ")) :]
    assert lines[0].startswith("Error: ") and all(line.startswith("  ") for line in lines[1:]), res.output
    for word in words:
        assert word in res.output, res.output


def test_bad_sets_and_specs_are_one_line(tmp_path):
    one_line_error(invoke(tmp_path, "run", "clean", "--input", str(tmp_path), "--set", "stages.image.min_side=[1"),
                   "stages.image.min_side", "not a YAML value")  # fmt: skip
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    one_line_error(invoke(tmp_path, "run", str(empty), "--set", "ray.num_cpus=1"), "empty")
    one_line_error(invoke(tmp_path, "run", "clean", "--set", "ray"), "key=value")
    one_line_error(invoke(tmp_path, "train", "scorer", "--data", "x", "--set", "foo=1"), "foo")
    one_line_error(invoke(tmp_path, "train", "scorer", "--data", "x", "--set", "steps={"), "steps")


def test_an_accounting_violation_says_what_and_where(ray_local, tmp_path, monkeypatch):
    from dataengine import accounting

    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "img" / "0.png").write_bytes(encode(textured(300), "PNG"))
    write_jsonl(data / "a.jsonl", [{"image": "img/0.png", "caption": "An abstract colourful texture, once."}])
    real = accounting.check
    # a lost samples file, as a broken object store would lose it: the real check then sees a missing id
    monkeypatch.setattr(accounting, "check", lambda ids, samples, rejects: real(ids, [], rejects))
    res = CliRunner().invoke(main, ["--storage", str(tmp_path / "st"), "run", "clean", "--input", str(data),
                                    "--output", str(tmp_path / "out"), "--set", "ray.progress=false"])  # fmt: skip
    one_line_error(res, "accounting invariant violated", "1 missing", str(tmp_path / "out"), "dataengine inspect")


def test_errors_are_clear_not_tracebacks(tmp_path):
    res = invoke(tmp_path, "run", "clean", "--input", str(tmp_path), "--set", "stages.image.min_sid=3")
    assert res.exit_code == 1 and "stages.1.image.min_sid" in res.output
    res = invoke(tmp_path, "run", "no-such-pipeline")
    assert res.exit_code == 1 and "available:" in res.output
    res = invoke(tmp_path, "inspect", "nope")
    assert res.exit_code == 1 and "no run 'nope'" in res.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing answers there
    res = invoke(tmp_path, "status", "raysubmit_x", "--address", f"http://127.0.0.1:{port}")
    assert res.exit_code == 1 and "ConnectionError" in res.output and "Traceback" not in res.output


def test_missing_input_is_a_clear_error(ray_local, tmp_path):
    res = invoke(tmp_path, "run", "clean", "--input", str(tmp_path / "absent"))
    assert res.exit_code == 1 and "input not found" in res.output


def test_a_run_shows_one_progress_view_and_keeps_ray_logs_in_its_folder(ray_local, tmp_path):
    """A terminal run (its own local Ray, beside the session's: the case that made Ray log errors) prints the
    progress view and the summary, not Ray's log lines; Ray's driver log is in the run's folder."""
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    recs = []
    for i in range(4):
        (data / "img" / f"{i}.png").write_bytes(encode(textured(600 + i), "PNG"))
        recs.append({"image": f"img/{i}.png", "caption": f"An abstract colourful texture, quiet run {i}."})
    recs.append({"image": "img/none.png", "caption": "A caption for a picture that is not there."})
    write_jsonl(data / "a.jsonl", recs)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    res = subprocess.run(
        [sys.executable, "-m", "dataengine.cli", "--storage", str(tmp_path / "st"), "run", "clean", "--input",
         str(data), "--set", "ray.num_cpus=1"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "stage" in out and "rejected" in out and "elapsed" in out  # the progress view
    assert "ingest" in out and "resolve" in out and "accounting OK" in out
    for noise in ("INFO", "WARNING", "Warning", "(pid=", "Traceback", "multiple active Ray instances"):
        assert noise not in out, (noise, out[-3000:])
    assert len(out.splitlines()) < 60, out
    (log,) = (tmp_path / "st" / "runs").glob("*/ray.log")
    assert "ray.data" in log.read_text()


def test_serve_commands_refuse_in_one_line_before_ray_starts(tmp_path):
    """A model that is not there, or a non-loopback host without an API key: one line naming the problem and
    what to do, exit code 1, no traceback, within seconds (before Ray starts). 192.0.2.1 (TEST-NET, not on this
    machine) stands for a public address, so that nothing is ever exposed here."""
    from dataengine.serving import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "example.com", "localhost.evil.com"]))
    ray_dir = tmp_path / "ray"  # where a Ray started by the command would put its session
    env = {k: v for k, v in os.environ.items() if k != "DATAENGINE_API_KEY"} | {"RAY_TMPDIR": str(ray_dir)}
    cases = [
        (["serve", "translator", "--model", "nosuch"], ["'nosuch' not found", "dataengine models pull"]),
        (["serve", "scorer", "--model", "nosuch"], ["'nosuch'", "dataengine train scorer"]),
        (["serve", "translator", "--host", "192.0.2.1"], ["192.0.2.1 without an API key", "DATAENGINE_API_KEY"]),
        (["serve", "scorer", "--model", "x", "--host", "192.0.2.1"], ["without an API key", "--api-key"]),
    ]
    for args, wanted in cases:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "dataengine.cli", "--storage", str(tmp_path), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        took = time.monotonic() - started
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in lines[0], (args, lines)
        assert lines[0].startswith("Error: ") and all(w in lines[0] for w in wanted), (args, lines)
        assert took < 45 and not ray_dir.exists(), (args, took)  # Ray never started
