"""Faults injected into real processes: nothing finished is lost, nothing half-written is left.

Every test drives the real CLI (``python -m clrbench``) as a separate process on real MNIST
and injects a real fault: ``kill -9`` of a worker, SIGINT to the process group (what Ctrl-C
does), SIGTERM to the CLI (what ``kill``, schedulers and CI runners send), a second writer, a
read-only mount, a file-size limit (``RLIMIT_FSIZE``), a Dask worker killed on a cluster of
separate processes. Each asserts the exit code, the one-line message, that every run finished
before the fault loads with identical bytes, that no partial file is left, and that a rerun
completes the suite.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from clrbench.store.results import load_results
from clrbench.suite.lock import folder_lock
from clrbench.text import plural

REPO = Path(__file__).resolve().parents[1]
# 2 schedules x 2 seeds, 2 epochs of 8 steps: seconds per run, most of it TensorFlow start-up.
TINY = {
    "experiment": {"name": "tiny", "epochs": 2, "seeds": 2, "train_size": 1000},
    "schedule": [
        {"label": "constant", "name": "constant", "lr": 0.05},
        {"label": "clr", "name": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 8},
    ],
}
TIMEOUT_S = 300


def write_config(folder: Path, seeds: int = 2) -> Path:
    config = folder / "tiny.toml"
    config.write_text(tomli_w.dumps({**TINY, "experiment": {**TINY["experiment"], "seeds": seeds}}))
    return config


def run_args(config: Path, out: Path, jobs: int = 2) -> list[str]:
    return ["run", "--config", str(config), "--out", str(out), "--jobs", str(jobs)]


def clrbench(args: list[str], mnist_dir: Path, prefix: tuple = (), **popen) -> subprocess.Popen:
    """Start ``python -m clrbench ARGS`` (this checkout) with its output in files."""
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "CLRBENCH_DATA_DIR": str(mnist_dir),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "COLUMNS": "300",  # one message, one line: no wrapping by rich
    }
    # not --quiet: the resume checks read the "already complete" line (--quiet prints only the path)
    command = [*prefix, sys.executable, "-m", "clrbench", *args, "--no-report"]
    if args[0] != "run":
        command = [*prefix, sys.executable, "-m", "clrbench", *args]
    return subprocess.Popen(command, env=env, cwd=REPO, text=True, **popen)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """Wait; (exit code, stderr)."""
    _, err = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, err


def run_cli(args: list[str], mnist_dir: Path, prefix: tuple = (), **popen) -> tuple[int, str]:
    return finish(
        clrbench(args, mnist_dir, prefix, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    )


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def snapshot(out: Path) -> dict[str, dict[str, bytes]]:
    """Every complete run's files, byte for byte."""
    runs = {}
    if not (out / "runs").is_dir():
        return runs
    for folder in sorted((out / "runs").iterdir()):
        # not a run being written right now (a temporary folder is complete before its rename)
        if (folder / "run.json").is_file() and not folder.name.startswith("."):
            runs[folder.name] = {f.name: f.read_bytes() for f in sorted(folder.iterdir())}
    return runs


def records(out: Path) -> dict[str, dict]:
    return {
        f.parent.name: json.loads(f.read_text()) for f in sorted((out / "runs").glob("*/run.json"))
    }


def assert_clean(out: Path) -> None:
    """No temporary or partial file or folder anywhere; every run folder is complete."""
    leftovers = [
        p for p in out.rglob("*") if p.name.startswith(".") and p.name != ".clrbench.suite.lock"
    ]
    assert leftovers == []
    for folder in (out / "runs").iterdir():
        assert (folder / "run.json").is_file(), f"{folder} is a partial run"
        record = json.loads((folder / "run.json").read_text())
        if record["status"] != "failed":
            assert {f.name for f in folder.iterdir()} == {
                "run.json",
                "batches.parquet",
                "epochs.parquet",
            }


def wait_for(condition, what: str, timeout: float = TIMEOUT_S, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the CLI ended (rc {process.returncode}) before {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def running(out: Path) -> dict[str, int]:
    """Runs in flight (their worker writes OUT/runs/.progress/<run_id>): run_id -> pid."""
    found = {}
    for file in (out / "runs" / ".progress").glob("[!.]*"):
        try:
            found[file.name] = json.loads(file.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, mnist_dir) -> Path:
    """A finished TINY results folder (4 runs), trained by the CLI. Copy before changing."""
    folder = tmp_path_factory.mktemp("tiny")
    out = folder / "results"
    code, err = run_cli(run_args(write_config(folder), out), mnist_dir)
    assert code == 0, err
    return out


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_fails_only_its_run(tmp_path, mnist_dir):
    config, out = write_config(tmp_path), tmp_path / "out"
    cli = clrbench(run_args(config, out), mnist_dir, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    victim, pid = next(iter(wait_for(lambda: running(out), "a run to start", process=cli).items()))
    os.kill(pid, signal.SIGKILL)
    code, err = finish(cli)

    assert code == 1
    assert f"failed {victim}: worker process {pid} killed by SIGKILL (signal 9)" in err
    status = {run_id: r["status"] for run_id, r in records(out).items()}
    assert status.pop(victim) == "failed" and set(status.values()) == {"ok"} and len(status) == 3
    assert_clean(out)
    before = snapshot(out)
    del before[victim]

    code, err = run_cli(run_args(config, out), mnist_dir)
    assert code == 0, err
    assert "3 runs were already complete" in err  # only the killed run is retrained
    after = snapshot(out)
    assert {k: after[k] for k in before} == before
    assert records(out)[victim]["status"] == "ok"
    assert len(load_results(out).runs) == 4


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_fails_only_its_stacks_members(tmp_path, mnist_dir):
    """``--stack --stack-width 2``: 4 runs in 2 stacks on 2 workers. Killing one worker fails
    the members of the stack it held, with the cause, and nothing else; the resume retrains
    just those, leaving the other stack's files byte for byte."""
    config, out = write_config(tmp_path), tmp_path / "out"
    args = [*run_args(config, out), "--stack", "--stack-width", "2"]
    cli = clrbench(args, mnist_dir, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    flights = wait_for(lambda: running(out), "a stack to start", process=cli)
    pid = next(iter(flights.values()))
    os.kill(pid, signal.SIGKILL)
    victims = {run_id for run_id, p in flights.items() if p == pid}
    code, err = finish(cli)

    assert code == 1 and len(victims) == 2, err
    for victim in victims:
        assert f"failed {victim}: worker process {pid} killed by SIGKILL (signal 9)" in err
    status = {run_id: r["status"] for run_id, r in records(out).items()}
    assert {status.pop(v) for v in victims} == {"failed"} and set(status.values()) == {"ok"}
    before = snapshot(out)
    for victim in victims:
        del before[victim]

    code, err = run_cli(args, mnist_dir)
    assert code == 0, err
    assert "2 runs were already complete" in err  # only the killed stack's members retrain
    after = snapshot(out)
    assert {k: after[k] for k in before} == before
    assert {r["status"] for r in records(out).values()} == {"ok"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "to_group", "code"),
    [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)],
    ids=["SIGINT-to-group", "SIGTERM-to-cli"],
)
def test_an_interrupted_suite_keeps_finished_runs_and_resumes(
    tmp_path, mnist_dir, signum, to_group, code
):
    config, out = write_config(tmp_path, seeds=3), tmp_path / "out"  # 6 runs, 2 at a time
    cli = clrbench(
        run_args(config, out),
        mnist_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )

    def finished_and_in_flight():
        done, flying = set(snapshot(out)), running(out)
        return (done, flying) if done and set(flying) - done else None

    done, flying = wait_for(finished_and_in_flight, "a finished and a running run", process=cli)
    before = snapshot(out)
    sent = time.monotonic()
    if to_group:  # Ctrl-C: the terminal signals the whole foreground process group
        os.killpg(cli.pid, signum)
    else:
        os.kill(cli.pid, signum)
    rc, err = finish(cli)
    stopped_s = time.monotonic() - sent

    assert rc == code
    assert stopped_s < 10
    name = signal.Signals(signum).name
    line = last_line(err)
    assert line.startswith(f"clrbench: interrupted by {name}: ")
    assert f"runs are finished in {out}, runs in flight were discarded; resume with: " in line
    assert line.endswith(" ".join(["python -m clrbench", *run_args(config, out), "--no-report"]))
    assert not any(alive(pid) for pid in set(flying.values()))  # no worker left training
    assert_clean(out)
    kept = snapshot(out)
    assert {k: kept[k] for k in before} == before  # nothing finished was lost or changed
    assert set(kept) <= set(before) | set(flying) and not (out / "runs" / ".progress").exists()

    rc, err = run_cli(run_args(config, out), mnist_dir)
    assert rc == 0, err
    assert f"{plural(len(kept), 'run was', 'runs were')} already complete" in err
    after = snapshot(out)
    assert len(after) == 6 and {k: after[k] for k in kept} == kept


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path, mnist_dir):
    config, out = write_config(tmp_path), tmp_path / "out"
    first = clrbench(
        run_args(config, out), mnist_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(lambda: running(out), "the first writer to train", process=first)

    code, err = run_cli(run_args(config, out), mnist_dir)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert last_line(err).startswith(
        f"clrbench: error: {out}: in use by clrbench run (pid {first.pid} on "
    )
    assert last_line(err).endswith("; wait for it or stop it")

    first.kill()  # kill -9 of the holder: the kernel releases its lock
    first.communicate()
    folders = [p for p in (out / "runs").iterdir() if not p.name.startswith(".")]
    assert all((p / "run.json").is_file() for p in folders)  # killed writer: no partial run
    before = snapshot(out)

    code, err = run_cli(run_args(config, out), mnist_dir)
    assert code == 0, err
    assert_clean(out)
    after = snapshot(out)
    assert len(after) == 4 and {k: after[k] for k in before} == before


@pytest.mark.slow
def test_lr_find_and_run_are_refused_on_a_folder_this_process_holds(tmp_path, mnist_dir):
    out = tmp_path / "held"
    with folder_lock(out, "run"):
        for args in (
            ["lr-find", "--out", str(out), "--steps", "20", "--seeds", "1"],
            run_args(write_config(tmp_path), out),
        ):
            code, err = run_cli(args, mnist_dir)
            assert code == 2
            assert len(err.strip().splitlines()) == 1
            holder = f"in use by clrbench run (pid {os.getpid()} on "
            assert last_line(err).startswith(f"clrbench: error: {out}: {holder}")
    assert {p.name for p in out.iterdir()} <= {".clrbench.suite.lock"}  # nothing written


def read_only_prefix(folder: Path) -> tuple[str, ...]:
    """A command prefix under which ``folder`` is read-only, even for root.

    As root, permission bits do not stop writes, so the child runs in a private mount
    namespace where ``folder`` is bind-mounted read-only (writes fail with EROFS, as on a
    read-only volume). As another user, ``chmod`` is enough.
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ()
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = subprocess.run([*prefix, script, str(folder), "true"], capture_output=True)
    if probe.returncode != 0 or shutil.which("unshare") is None:
        pytest.skip("running as root without mount namespaces: cannot make a read-only folder")
    return (*prefix, script, str(folder))


@pytest.mark.slow
def test_a_read_only_output_folder_is_one_line_and_exit_2(tmp_path, tiny_results, mnist_dir):
    folder = tmp_path / "ro"
    shutil.copytree(tiny_results, folder / "results")
    config = write_config(tmp_path, seeds=3)  # 2 runs to train, 4 kept
    before = snapshot(folder / "results")
    prefix = read_only_prefix(folder)
    for out in (folder / "results", folder / "new"):
        code, err = run_cli(run_args(config, out), mnist_dir, prefix)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert last_line(err).startswith(f"clrbench: error: {out}: cannot write here (")
    assert not (folder / "new").exists()
    assert snapshot(folder / "results") == before
    assert len(load_results(folder / "results").runs) == 4


def _file_size_limit(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_a_file_size_limit_while_writing_fails_the_run_and_leaves_no_partial_file(
    tmp_path, tiny_results, mnist_dir
):
    out = tmp_path / "results"
    shutil.copytree(tiny_results, out)
    before = snapshot(out)
    config = write_config(tmp_path, seeds=3)  # 2 new runs
    # run.json (~2 kB) fits under 4 kB; a run's batches.parquet (~5 kB) does not.
    limit = 4096
    assert max(len(b) for files in before.values() for b in files.values()) > limit
    code, err = run_cli(run_args(config, out), mnist_dir, preexec_fn=_file_size_limit(limit))

    assert code == 1
    new = {k: r for k, r in records(out).items() if k not in before}
    assert len(new) == 2
    for run_id, record in new.items():
        assert record["status"] == "failed"
        assert record["error"].startswith("cannot write the run's files: OSError: [Errno 27]")
        assert f"failed {run_id}: cannot write the run's files" in err
        assert sorted(p.name for p in (out / "runs" / run_id).iterdir()) == ["run.json"]
    assert_clean(out)
    assert {k: snapshot(out)[k] for k in before} == before
    assert len(load_results(out).runs) == 6  # loads: 4 ok runs and 2 failed ones

    code, err = run_cli(run_args(config, out), mnist_dir)
    assert code == 0, err
    assert "4 runs were already complete" in err
    after = snapshot(out)
    assert {k: after[k] for k in before} == before
    assert all(r["status"] == "ok" for r in records(out).values())


@pytest.fixture
def dask_cluster(tmp_path, mnist_dir):
    """``dask scheduler`` and two ``dask worker`` processes on localhost; address and pids."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
    env = os.environ | {"PYTHONPATH": str(REPO), "CLRBENCH_DATA_DIR": str(mnist_dir)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    scheduler_file = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("w")
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            env=env, stdout=log, stderr=log,
        )
    ]  # fmt: skip
    try:
        wait_for(scheduler_file.exists, "the Dask scheduler", timeout=60)
        address = json.loads(scheduler_file.read_text())["address"]
        for name in ("w1", "w2"):
            processes.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--name", name,
                     "--no-dashboard", "--local-directory", str(tmp_path / name)],
                    env=env, stdout=log, stderr=log,
                )
            )  # fmt: skip
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.mark.slow
def test_a_dask_worker_killed_mid_run_is_retried_and_the_suite_finishes(
    tmp_path, mnist_dir, dask_cluster
):
    config, out = write_config(tmp_path), tmp_path / "out"
    args = [*run_args(config, out), "--backend", "dask", "--scheduler", dask_cluster]
    cli = clrbench(args, mnist_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim, pid = next(iter(wait_for(lambda: running(out), "a Dask run", process=cli).items()))
    os.kill(pid, signal.SIGKILL)  # the worker process running it (its nanny starts a new one)
    code, err = finish(cli)

    assert code == 0, err  # the scheduler retried the lost task on a live worker
    assert all(r["status"] == "ok" for r in records(out).values()) and len(records(out)) == 4
    assert records(out)[victim]["status"] == "ok"
    assert_clean(out)
    before = snapshot(out)
    code, err = run_cli(args, mnist_dir)
    assert code == 0, err
    assert "4 runs were already complete" in err and snapshot(out) == before
