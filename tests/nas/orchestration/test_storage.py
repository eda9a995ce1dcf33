"""nas.rundir.location: a run's location on a local path or an object store, against a real S3
server (moto, 127.0.0.1) and a real Ray Tune run."""

import os
import tempfile
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from nas.rundir.location import RunLocation, StorageError, ThrottledWriter, refuse_local_on_multinode


# The I/O tests run on both locations: a local path (fast tier) and S3 (its fixture closure holds
# s3_server, so tests/conftest.py marks that case slow).
@pytest.fixture
def local_location(tmp_path):
    return RunLocation.parse(tmp_path / "runs", "exp")


@pytest.fixture
def s3_location(s3_uri):
    return RunLocation.parse(s3_uri, "exp")


# --- parsing --------------------------------------------------------------------------------------

def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = RunLocation.parse("runs", "exp")
    assert loc.is_local and loc.storage_path == str(tmp_path.resolve() / "runs")
    assert loc.run_uri == loc.display == str(tmp_path.resolve() / "runs" / "exp")
    assert loc.local_dir == tmp_path.resolve() / "runs" / "exp"


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert RunLocation.parse("~/runs", "exp").root == str(tmp_path.resolve() / "runs" / "exp")


def test_file_uri_is_a_local_path(tmp_path):
    loc = RunLocation.parse(f"file://{tmp_path}/runs", "exp")
    assert loc.is_local and loc.root == str(tmp_path.resolve() / "runs" / "exp")


def test_uri_is_never_resolved_and_keeps_its_query(s3_server):
    uri = s3_server.uri("runs")
    loc = RunLocation.parse(uri, "exp")
    assert not loc.is_local and isinstance(loc.fs, pafs.S3FileSystem)
    assert loc.uri == uri  # what RunConfig(storage_path=...) gets, unchanged
    assert loc.root == "nas-test/runs/exp"
    assert loc.run_uri == f"s3://nas-test/runs/exp?endpoint_override=127.0.0.1:{s3_server.port}&scheme=http"
    assert loc.display == "s3://nas-test/runs/exp"  # no endpoint in messages
    assert "s3:" not in str(Path.cwd()) and not Path("s3:").exists()
    back = RunLocation.from_run_uri(loc.run_uri)
    assert (back.storage_path, back.name, back.root) == (uri, "exp", loc.root)


def test_from_run_uri_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = RunLocation.from_run_uri("runs/exp/")
    assert (loc.storage_path, loc.name) == (str(tmp_path.resolve() / "runs"), "exp")


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_storage_path_is_refused(bad):
    with pytest.raises(StorageError, match="^storage_path: is empty"):
        RunLocation.parse(bad, "exp")


@pytest.mark.parametrize("name", ["", "a/b", ".."])
def test_bad_name_is_refused(tmp_path, name):
    with pytest.raises(StorageError, match="^name: "):
        RunLocation.parse(tmp_path, name)


def test_unknown_scheme_is_a_storage_error():
    with pytest.raises(StorageError, match="^storage_path: nosuch://x/y is not a storage URI"):
        RunLocation.parse("nosuch://x/y", "exp")


# --- I/O, the same on both ------------------------------------------------------------------------

def test_round_trip_on_a_local_path(local_location, tmp_path):
    _round_trip(local_location, tmp_path)


def test_round_trip_on_s3(s3_location, tmp_path):
    _round_trip(s3_location, tmp_path)


def _round_trip(location, tmp_path):
    assert not location.exists("trials.csv")
    location.write_text("trials.csv", "a,b\n1,2\n")
    location.write_bytes("sub/blob.bin", b"\x00\x01")
    assert location.read_text("trials.csv") == "a,b\n1,2\n"
    assert location.read_bytes("sub/blob.bin") == b"\x00\x01"
    assert location.exists("trials.csv") and location.is_file("trials.csv") and not location.is_file("sub")
    assert location.list() == ["sub", "trials.csv"]
    assert location.list(recursive=True) == ["sub", "sub/blob.bin", "trials.csv"]
    location.write_text("trials.csv", "a,b\n3,4\n")  # overwrite
    assert location.read_text("trials.csv") == "a,b\n3,4\n"
    with pytest.raises(FileNotFoundError):
        location.read_text("missing.json")

    src = tmp_path / "src"
    (src / "figures").mkdir(parents=True)
    (src / "report.html").write_text("<html/>")
    (src / "figures" / "a.png").write_bytes(b"png")
    location.upload_dir(src, "report")
    assert location.list("report", recursive=True) == ["figures", "figures/a.png", "report.html"]
    out = location.download("report", tmp_path / "back")
    assert (out / "figures" / "a.png").read_bytes() == b"png"
    assert location.download("trials.csv", tmp_path / "t.csv").read_text() == "a,b\n3,4\n"

    with location.staged("export") as folder:
        (Path(folder) / "index.json").write_text("{}")
    assert location.read_text("export/index.json") == "{}"

    location.delete("report")
    assert not location.exists("report")
    location.check_writable()
    assert location.list() == ["export", "sub", "trials.csv"]  # the probe is gone


def test_local_write_is_atomic(tmp_path, monkeypatch):
    """A write that fails before its rename leaves the old file whole and no temp file behind."""
    loc = RunLocation.parse(tmp_path, "exp")
    loc.write_text("trials.csv", "old\n")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        loc.write_text("trials.csv", "new\n" * 1000)
    monkeypatch.undo()
    assert loc.read_text("trials.csv") == "old\n"
    assert loc.list() == ["trials.csv"]


def test_unwritable_local_storage_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    loc = RunLocation.parse(tmp_path / "afile" / "runs", "exp")
    with pytest.raises(StorageError, match=r"^storage_path: cannot write to .*afile"):
        loc.check_writable()


def test_missing_bucket_is_refused(s3_server):
    loc = RunLocation.parse(f"s3://no-such-bucket/runs?endpoint_override=127.0.0.1:{s3_server.port}&scheme=http",
                            "exp")
    with pytest.raises(StorageError, match=r"^storage_path: cannot write to s3://no-such-bucket/runs/exp \("):
        loc.check_writable()


def test_plain_uri_with_endpoint_variable(s3_server, monkeypatch):
    """The other way to name the endpoint: AWS_ENDPOINT_URL, with a plain s3://bucket/path."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    loc = RunLocation.parse(s3_server.plain_uri("plain"), "exp")
    loc.write_text("x.txt", "hi")
    assert "plain/exp/x.txt" in s3_server.keys("plain/")


def test_throttled_writer_defers_only_on_object_stores(s3_uri, tmp_path):
    now = [0.0]
    remote = ThrottledWriter(RunLocation.parse(s3_uri, "exp"), min_interval_s=5.0, clock=lambda: now[0])
    assert remote.write_text("trials.csv", "v1")  # first write goes through
    now[0] = 1.0
    assert not remote.write_text("trials.csv", "v2")  # within 5 s: kept, not uploaded
    assert remote.location.read_text("trials.csv") == "v1"
    assert remote.write_text("epochs.csv", "e1")  # each file has its own interval
    now[0] = 6.0
    assert remote.write_text("trials.csv", "v3")
    assert remote.location.read_text("trials.csv") == "v3"
    now[0] = 7.0
    remote.write_text("trials.csv", "v4")
    remote.flush()
    assert remote.location.read_text("trials.csv") == "v4"

    local = ThrottledWriter(RunLocation.parse(tmp_path, "exp"), min_interval_s=5.0, clock=lambda: 0.0)
    assert local.write_text("trials.csv", "a") and local.write_text("trials.csv", "b")
    assert local.location.read_text("trials.csv") == "b"


def test_refuse_local_on_multinode(tmp_path, s3_uri, monkeypatch):
    alive, dead = {"Alive": True}, {"Alive": False}
    local = RunLocation.parse(tmp_path, "exp")
    refuse_local_on_multinode(local, [alive, dead])  # one alive node: fine
    refuse_local_on_multinode(RunLocation.parse(s3_uri, "exp"), [alive, alive])  # shared storage: fine
    with pytest.raises(StorageError) as err:
        refuse_local_on_multinode(local, [alive, alive, dead])
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"storage_path: {tmp_path.resolve()} is a local path")
    assert "2 nodes" in message and "s3://" in message and "shared filesystem" in message
    monkeypatch.setenv("NAS_SHARED_STORAGE", "1")
    refuse_local_on_multinode(local, [alive, alive])


# --- a real Ray Tune run with its storage on the S3 server ----------------------------------------

def two_epochs(config):
    """Reports 2 metrics and a checkpoint per epoch; resumes from its checkpoint; the x=2 trial fails
    once after its first epoch while config["fail_flag"] does not exist (it creates it)."""
    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            start = int(Path(d, "epoch").read_text())
    for epoch in range(start, 2):
        if config["x"] == 2 and epoch == 1 and not os.path.exists(config["fail_flag"]):
            Path(config["fail_flag"]).write_text("failed once")
            raise RuntimeError("injected failure")
        with tempfile.TemporaryDirectory() as d:
            Path(d, "epoch").write_text(str(epoch + 1))
            tune.report({"score": config["x"] * (epoch + 1), "started_at": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_tune_run_on_s3_and_restore(ray_instance, s3_server, s3_uri, tmp_path):
    from ray import tune

    loc = RunLocation.parse(s3_uri, "exp")
    loc.check_writable()
    tuner = tune.Tuner(
        two_epochs,
        param_space={"x": tune.grid_search([1, 2]), "fail_flag": str(tmp_path / "failed")},
        run_config=tune.RunConfig(storage_path=loc.uri, name=loc.name, verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    results = tuner.fit()
    by_x = {r.config["x"]: r for r in results}
    assert by_x[1].error is None and by_x[1].metrics["score"] == 2
    assert by_x[2].error is not None  # the injected failure, after 1 epoch and its checkpoint

    prefix = loc.root.split("/", 1)[1] + "/"
    keys = s3_server.keys(prefix)
    assert any(k.startswith(prefix + "experiment_state-") for k in keys)
    assert sum(k.endswith("/checkpoint_000001/epoch") for k in keys) == 1  # x=1 finished 2 epochs
    assert sum(k.endswith("/checkpoint_000000/epoch") for k in keys) == 2  # both did 1
    assert by_x[1].checkpoint.filesystem.type_name == "s3"
    assert loc.relative(by_x[1].checkpoint.path).endswith("/checkpoint_000001")
    assert not any(Path(tempfile.gettempdir()).glob("s3:*"))  # nothing turned the URI into a local path

    assert tune.Tuner.can_restore(loc.run_uri)
    # A callback appended to what Tuner.restore unpickled runs in the resumed fit (how a bucket journal's
    # working copy is written back: nas.orchestration.bucket_journal); here the study "wrote" one line.
    from nas.orchestration.bucket_journal import BucketJournal, JournalWriteBack
    from nas.orchestration.relocation import restored_callbacks

    loc.write_text("optuna.journal", "asked\n")
    journal = BucketJournal(loc, "optuna.journal", tmp_path / "work" / "optuna.journal")
    journal.pull().write_text("asked\ntold\n")
    tuner = tune.Tuner.restore(loc.run_uri, trainable=two_epochs, resume_errored=True)
    restored_callbacks(tuner).append(JournalWriteBack(journal))
    restored = tuner.fit()
    assert loc.read_text("optuna.journal") == "asked\ntold\n"
    by_x = {r.config["x"]: r for r in restored}
    assert all(r.error is None for r in restored)
    # the errored trial went on from its S3 checkpoint (epoch 1), not from scratch
    assert by_x[2].metrics["score"] == 4 and by_x[2].metrics["started_at"] == 1
    assert any(k.endswith("/checkpoint_000001/epoch") and "x=2" in k for k in s3_server.keys(prefix))
