"""nas.analyze: the report's figures contain the right trials on the right axes, on complete, partial
and failed runs (synthetic run directories from tests.helpers.fake_run)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from nas.analyze import main
from nas.cli import run_main
from nas.report import load_run, pareto_front, write_report
from nas.report.run_data import normalize_trials
from search_spaces import load_architecture
from tests.helpers.fake_run import write_fake_run

ROOT = Path(__file__).resolve().parents[3]


def figures(report: Path) -> dict[str, dict]:
    """The plotly figures embedded in the page, by section key (what the browser draws)."""
    text = report.read_text()
    found = re.findall(r"<script type='application/json' id='figure-([\w-]+)'>(.*?)</script>", text, re.S)
    return {key: json.loads(body) for key, body in found}


def trial_points(fig: dict, role: str = "trials", epoch: int | None = None) -> dict[str, tuple]:
    """{trial_id: (x, y, customdata)} over the per-trial point traces of a figure (of one fidelity's
    panel when `epoch` is given)."""
    out = {}
    for tr in fig["data"]:
        meta = tr.get("meta") or {}
        if meta.get("role") != role or (epoch is not None and meta.get("epoch") != epoch):
            continue
        for x, y, cd in zip(tr["x"], tr["y"], tr["customdata"], strict=True):
            assert cd[0] not in out, f"trial {cd[0]} plotted twice"
            out[cd[0]] = (x, y, cd)
    return out


def role_traces(fig: dict, role: str) -> list[dict]:
    return [tr for tr in fig["data"] if (tr.get("meta") or {}).get("role") == role]


def axis_title(fig: dict, axis: str = "xaxis") -> str:
    return fig["layout"][axis]["title"]["text"]


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory):
    run_dir = write_fake_run(tmp_path_factory.mktemp("asha") / "run", n_trials=30, seed=1)
    report = write_report(run_dir)
    return run_dir, report, pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})


@pytest.fixture(scope="module")
def asha_figs(asha_run):
    return figures(asha_run[1])


def test_report_is_one_offline_page_with_every_section(asha_run):
    run_dir, report, _ = asha_run
    assert report == run_dir / "report.html"
    html = report.read_text()
    assert "plotly.js v" in html  # embedded: no CDN, works offline
    assert not re.search(r"<script[^>]+src=['\"]https?:", html)
    for key in ("summary", "top-k", "cardinality", "width", "depth", "edf", "flops", "params", "speed",
                "curves", "importance", "failed"):
        assert f"id='{key}'" in html, key
    assert "id='matched'" not in html  # not a capacity-matched sweep


def test_header_shows_budget_space_dataset_outcomes_and_best(asha_run):
    run_dir, report, trials = asha_run
    html = report.read_text()
    header = html[html.index("id='summary'"):html.index("id='top-k'")]
    assert "4.00 GFLOPs (feasible 3.80–4.00) at 224×224" in header
    assert "resnext-imagenet" in header and "imagenet-100" in header
    for outcome, n in trials["outcome"].value_counts().items():
        assert f"{outcome}: {n}" in header
    done = trials[trials["outcome"] == "completed"]
    best = done.loc[done["best_val_accuracy"].idxmax()]
    assert best["name"] in header and f"{best['best_val_accuracy'] * 100:.2f}%" in header


def epoch_accuracy(run_dir: Path, epoch: int) -> dict[str, float]:
    ep = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    return ep[ep["epoch"] == epoch].set_index("trial_id")["val_accuracy"].to_dict()


def test_accuracy_vs_cardinality_one_panel_per_fidelity(asha_run, asha_figs):
    run_dir, _, trials = asha_run
    fig = asha_figs["cardinality"]
    measured = trials[trials["outcome"].isin(["completed", "stopped"])]
    done = trials[trials["outcome"] == "completed"]
    at1 = epoch_accuracy(run_dir, 1)
    # left panel: every measured trial, with the accuracy it had at epoch 1 (not its best later on)
    left = trial_points(fig, epoch=1)
    assert set(left) == set(measured["trial_id"])
    for row in measured.itertuples():
        x, y, cd = left[row.trial_id]
        assert cd[3] == row.cardinality and cd[1] == row.name  # hover: the architecture
        # points of different widths sit side by side, within a quarter octave of their cardinality
        assert abs(math.log2(x) - math.log2(row.cardinality)) < 0.25
        assert y == pytest.approx(100 * at1[row.trial_id])
    # right panel: the completed trials only, at their best accuracy
    right = trial_points(fig, epoch=9)
    assert set(right) == set(done["trial_id"])
    for row in done.itertuples():
        assert right[row.trial_id][1] == pytest.approx(100 * row.best_val_accuracy)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles[0] == f"at epoch 1, n={len(measured)} (left out: 3 failed)"
    assert titles[1].startswith(f"completed (9 epochs), n={len(done)}")
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert "cardinality" in axis_title(fig) and "(%)" in axis_title(fig, "yaxis")
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "d"
    # the trends: one median per cardinality per panel, over that panel's trials, with an interval
    for epoch, rows, acc in ((1, measured, measured["trial_id"].map(at1)), (9, done, done["best_val_accuracy"])):
        trend = next(t for t in role_traces(fig, "median-ci") if t["meta"]["epoch"] == epoch)
        want = acc.groupby(rows["cardinality"]).agg(["median", "count"])
        assert trend["meta"]["groups"] == list(want.index)
        assert trend["meta"]["median"] == pytest.approx(list(want["median"]))
        assert trend["meta"]["group_n"] == list(want["count"])
        for lo, med, hi, n in zip(trend["meta"]["lo"], trend["meta"]["median"], trend["meta"]["hi"],
                                  trend["meta"]["group_n"], strict=True):
            assert (lo is None) == (n < 2)
            assert n < 2 or lo <= med <= hi


def test_failed_trials_are_listed_not_plotted(asha_run, asha_figs):
    run_dir, report, trials = asha_run
    failed = trials[trials["outcome"].isin(["diverged", "oom", "error"])]
    assert set(failed["outcome"]) == {"diverged", "oom", "error"}
    for key, fig in asha_figs.items():
        for role in ("trials", "trials-throughput", "pareto"):
            for tr in role_traces(fig, role):
                assert not set(cd[0] for cd in tr["customdata"]) & set(failed["trial_id"]), key
    html = report.read_text()
    failed_section = html[html.index("id='failed'"):]
    for row in failed.itertuples():
        assert row.trial_id in failed_section and row.reason in failed_section


def test_width_and_depth_figures(asha_run, asha_figs):
    _, _, trials = asha_run
    measured = trials[trials["outcome"].isin(["completed", "stopped"])]
    width = trial_points(asha_figs["width"], epoch=1)
    assert {tid: cd[4] for tid, (_, _, cd) in width.items()} == dict(zip(measured["trial_id"], measured["width"],
                                                                         strict=True))
    assert "bottleneck width d" in axis_title(asha_figs["width"])
    depth = asha_figs["depth"]
    # one panel for the total, one per stage, each with every measured trial
    titles = [a["text"] for a in depth["layout"]["annotations"]]
    assert titles == ["total (blocks)", "stage 1", "stage 2", "stage 3", "stage 4"]
    by_axis: dict[str, dict] = {}
    for tr in role_traces(depth, "trials"):
        for x, cd in zip(tr["x"], tr["customdata"], strict=True):
            by_axis.setdefault(tr.get("xaxis", "x"), {})[cd[0]] = x
    assert len(by_axis) == 5
    rows = measured.set_index("trial_id")
    for axis, col in zip(["x", "x2", "x3", "x4", "x5"], ["depth_total", "depth_1", "depth_2", "depth_3", "depth_4"],
                         strict=True):
        assert set(by_axis[axis]) == set(rows.index)
        for tid, x in by_axis[axis].items():
            assert abs(x - rows.at[tid, col]) < 0.35


def test_edf_per_cardinality_at_each_fidelity(asha_run, asha_figs):
    run_dir, _, trials = asha_run
    done = trials[trials["outcome"] == "completed"]
    measured = trials[trials["outcome"].isin(["completed", "stopped"])]
    at1 = epoch_accuracy(run_dir, 1)
    edfs = role_traces(asha_figs["edf"], "edf")
    assert {e["meta"]["epoch"] for e in edfs} == {1, 9}
    for epoch, rows in ((1, measured), (9, done)):
        curves = {tr["meta"]["cardinality"]: tr for tr in edfs if tr["meta"]["epoch"] == epoch}
        assert {c: tr["meta"]["n"] for c, tr in curves.items()} == rows["cardinality"].value_counts().to_dict()
        for c, tr in curves.items():
            part = rows[rows["cardinality"] == c]
            acc = part["trial_id"].map(at1) if epoch == 1 else part["best_val_accuracy"]
            assert tr["x"][1:] == pytest.approx(sorted(100 * (1 - acc)))  # errors at that one fidelity
    for tr in edfs:
        assert tr["y"][0] == 0 and tr["y"][-1] == pytest.approx(1.0)
        assert tr["x"] == sorted(tr["x"])
    assert "error (%)" in axis_title(asha_figs["edf"])


def test_pareto_fronts_and_cost_axes(asha_run, asha_figs):
    _, _, trials = asha_run
    done = trials[trials["outcome"] == "completed"].assign(accuracy=lambda t: t["best_val_accuracy"])
    flops = asha_figs["flops"]
    assert "GFLOPs" in axis_title(flops)
    front = role_traces(flops, "pareto")[0]
    front_ids = [cd[0] for cd in front["customdata"]]
    assert front_ids == list(pareto_front(done, "flops_nominal")["trial_id"])
    # no completed trial is cheaper and at least as accurate as a front member
    for tid in front_ids:
        r = done.set_index("trial_id").loc[tid]
        assert not ((done["flops_nominal"] < r["flops_nominal"]) & (done["accuracy"] >= r["accuracy"])).any()
    assert any(s.get("x0") == pytest.approx(4.0) for s in flops["layout"]["shapes"])  # the budget line
    # the feasible band is [(1 - tolerance) * budget, budget]: it ends at the budget (a ceiling)
    band = [s for s in flops["layout"]["shapes"] if s.get("name") == "feasible"]
    assert [(b["x0"], b["x1"]) for b in band] == [pytest.approx((3.8, 4.0))]
    assert "feasible 3.8–4 GFLOPs" in [a["text"] for a in flops["layout"]["annotations"]]
    assert set(trial_points(flops)) == set(trials.loc[trials["outcome"].isin(["completed", "stopped"]),
                                                      "trial_id"])
    params = asha_figs["params"]
    assert axis_title(params) == "M parameters (params_nominal)"  # the column's name (schema.COST_COLUMNS)
    xs = {tid: x for tid, (x, _, _) in trial_points(params).items()}
    for row in trials[trials["trial_id"].isin(xs)].itertuples():
        assert xs[row.trial_id] == pytest.approx(row.params_nominal / 1e6)


def test_a_run_written_before_the_cost_vocabulary_reads_under_the_new_names(asha_run, tmp_path):
    """trials.csv once had `flops`, `params` and `flops_train`: they load as `flops_nominal`,
    `params_nominal` and `flops_trained` (schema.RENAMED_COLUMNS), so old runs keep their report."""
    run_dir, _, trials = asha_run
    old = trials.drop(columns=["params_trained"]).rename(
        columns={"flops_nominal": "flops", "params_nominal": "params", "flops_trained": "flops_train"})
    loaded = normalize_trials(old)
    assert list(loaded["flops_nominal"]) == list(trials["flops_nominal"].astype(float))
    assert list(loaded["flops_trained"]) == list(trials["flops_trained"].astype(float))
    assert list(loaded["gflops"]) == pytest.approx(list(trials["flops_nominal"] / 1e9))
    assert list(loaded["mparams"]) == pytest.approx(list(trials["params_nominal"] / 1e6))


def test_speed_figure_plots_measured_images_per_second(asha_run, asha_figs):
    _, _, trials = asha_run
    fig = asha_figs["speed"]
    assert "images/s" in axis_title(fig)
    points = trial_points(fig)
    rows = trials.set_index("trial_id")
    for tid, (x, _, _) in points.items():
        assert x == pytest.approx(rows.at[tid, "images_per_second"])
    per_c = trial_points(fig, "trials-throughput")
    assert set(per_c) == set(points)


def test_learning_curves_show_where_asha_stopped(asha_run, asha_figs):
    run_dir, _, trials = asha_run
    epochs = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    fig = asha_figs["curves"]
    curves = {tr["meta"]["trial_id"]: tr for tr in role_traces(fig, "curve")}
    assert set(curves) == set(epochs["trial_id"])
    some = epochs["trial_id"].iloc[0]
    assert curves[some]["x"] == list(epochs.loc[epochs["trial_id"] == some, "epoch"])
    stopped = trials[trials["outcome"] == "stopped"]
    stops = role_traces(fig, "asha-stop")[0]
    assert sorted(cd[0] for cd in stops["customdata"]) == sorted(stopped["trial_id"])
    assert sorted(stops["x"]) == sorted(stopped["epochs"])
    assert axis_title(fig).startswith("epoch")


def test_importance_ranks_the_trained_architecture_not_the_sampler_encoding(asha_figs):
    # trials.csv holds the sampler's encoded param_*_pos / param_cardinality_index columns too; the
    # figure ranks what trained: cardinality, width and the depths (base width is constant here).
    bar = role_traces(asha_figs["importance"], "importance")[0]
    assert {"cardinality", "width", "depth_1", "depth_4"} <= set(bar["y"])
    assert not [y for y in bar["y"] if y.endswith(("_pos", "_index"))], bar["y"]
    assert "at epoch 1" in asha_figs["importance"]["layout"]["title"]["text"]


def test_importance_ranks_the_sampled_parameters_or_says_too_few(asha_run, asha_figs):
    _, _, trials = asha_run
    # every measured trial at epoch 1: enough for importance, with its bootstrap interval
    bar = role_traces(asha_figs["importance"], "importance")[0]
    assert {"cardinality", "width"} <= set(bar["y"])
    assert bar["meta"]["n"] == trials["outcome"].isin(["completed", "stopped"]).sum()
    assert sum(bar["x"]) == pytest.approx(1.0, abs=0.05)  # means of resamples that each sum to 1
    assert "at epoch 1" in asha_figs["importance"]["layout"]["title"]["text"]
    # the completed trials are too few: no bars, a sentence
    fig = asha_figs["importance-completed"]
    assert not fig["data"] and fig["layout"]["meta"]["role"] == "importance-none"
    n_done = int((trials["outcome"] == "completed").sum())
    assert n_done < 10 and f"too few trials (n={n_done};" in fig["layout"]["annotations"][0]["text"]


def test_top_k_table_links_to_loadable_architectures(asha_run):
    run_dir, report, trials = asha_run
    html = report.read_text()
    table = html[html.index("id='top-k'"):html.index("id='trials'")]
    links = re.findall(r'<a href="(architectures/[^"]+)">', table)
    assert len(links) == 10
    done = trials[trials["outcome"] == "completed"].sort_values("best_val_accuracy", ascending=False)
    assert links[0] == f"architectures/{done['trial_id'].iloc[0]}.json"
    for link in links:
        arch = load_architecture(run_dir / link)
        tid = Path(link).stem
        assert arch.describe() == trials.set_index("trial_id").at[tid, "name"]


def test_parquet_has_one_row_per_trial(asha_run):
    run_dir, _, trials = asha_run
    table = pd.read_parquet(run_dir / "trials.parquet")
    assert list(table["trial_id"]) == list(trials["trial_id"])
    assert table["flops_nominal"].iloc[0] == trials["flops_nominal"].iloc[0]


def test_capacity_matched_sweep_table_and_plot(tmp_path):
    run_dir = write_fake_run(tmp_path / "grid", matched=True, failures=False)
    report = write_report(run_dir)
    fig = figures(report)["matched"]
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    seeds = trial_points(fig)
    assert len(seeds) == 15 and set(seeds) == set(trials["trial_id"])
    ticks = fig["layout"]["xaxis"]["ticktext"]
    assert ticks == ["C=1<br>d=64", "C=2<br>d=40", "C=4<br>d=24", "C=8<br>d=14", "C=32<br>d=4"]
    for x, y, cd in seeds.values():  # each seed sits at its setting, its error on y
        assert ticks[round(x)] == f"C={cd[3]}<br>d={cd[4]}"
        assert y == pytest.approx(100 - cd[9])
    mean = role_traces(fig, "mean")[0]
    assert len(mean["y"]) == 5
    assert "error" in axis_title(fig, "yaxis")
    html = report.read_text()
    section = html[html.index("id='matched'"):html.index("id='edf'")]
    assert "matched on parameters" in section and section.count("<tr>") == 6  # header + 5 settings


def test_partial_run_without_search_json(tmp_path):
    run_dir = write_fake_run(tmp_path / "partial", n_trials=12, partial=True, write_search_json=False)
    report = write_report(run_dir)
    html = report.read_text()
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    running = trials.loc[trials["outcome"] == "running", "trial_id"].item()
    pending = trials.loc[trials["outcome"] == "pending", "trial_id"].item()
    points = trial_points(figures(report)["cardinality"], epoch=1)  # the running one counts at epoch 1
    assert running in points and pending not in points
    assert points[running][2][2] == "running"
    assert "search.json is missing" in html and "still running or interrupted" in html


def test_run_with_only_failed_or_pending_trials_gives_notes(tmp_path):
    run_dir = write_fake_run(tmp_path / "bad", n_trials=4, partial=False)
    trials = pd.read_csv(run_dir / "trials.csv")
    numeric = ["val_accuracy", "best_val_accuracy", "val_loss", "train_loss", "images_per_second", "seconds"]
    trials.loc[:, numeric] = float("nan")
    trials["outcome"] = ["pending"] * 2 + ["oom"] * (len(trials) - 2)
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "epochs.csv").unlink()
    report = write_report(run_dir)
    html = report.read_text()
    assert "No trial has reported an accuracy yet" in html
    assert figures(report) == {}  # every figure section is a note
    assert html.count("class='badge'") >= 2


def test_header_only_trials_csv(tmp_path):
    (tmp_path / "trials.csv").write_text("trial_id,status,outcome\n")
    report = write_report(tmp_path)
    assert "0 trial(s)" in report.read_text()


def test_param_importance_from_too_few_trials_says_so(tmp_path):
    run_dir = write_fake_run(tmp_path / "few", n_trials=6, failures=False, seed=3)
    from nas.report.figures import importance

    section = importance(load_run(run_dir))
    assert not section.figure.data and "too few trials (n=6" in section.caption


def test_command_line(asha_run, capsys):
    run_dir, _, _ = asha_run
    assert run_main(main, [str(run_dir), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "completed" in out


def test_report_survives_unreadable_arch_and_odd_ids(tmp_path):
    run_dir = write_fake_run(tmp_path / "odd", n_trials=5, failures=False, seed=5)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    trials.loc[0, "arch"] = "{not json"
    trials.loc[1, "trial_id"] = "../weird id"
    trials.to_csv(run_dir / "trials.csv", index=False)
    report = write_report(run_dir)
    assert "unreadable arch" in report.read_text()
    names = sorted(p.name for p in (run_dir / "architectures").iterdir())
    assert "weird_id.json" in names and all(p.parent == run_dir / "architectures"
                                            for p in (run_dir / "architectures").iterdir())
    shutil.rmtree(run_dir)


def test_default_cpu_run_no_longer_shows_the_c2_artefact_as_a_trend(tmp_path):
    """docs/runs' real CPU run: ASHA kept the C=2 trials for a second epoch, so pooling each trial's final
    accuracy ranks C=2 first. At one fidelity, C=8 leads at epoch 1 and the completed ones are a tie."""
    for part in ("trials.csv", "epochs.csv", "search.json"):
        shutil.copy(ROOT / "docs" / "runs" / f"cpu-default-4GFLOPs-{part}", tmp_path / part)
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert trials.nlargest(2, "best_val_accuracy")["cardinality"].tolist() == [2, 2]  # pooled, C=2 on top
    fig = figures(write_report(tmp_path))["cardinality"]
    trends = {t["meta"]["epoch"]: t["meta"] for t in role_traces(fig, "median-ci")}
    assert set(trends) == {1, 2}
    at1 = dict(zip(trends[1]["groups"], trends[1]["median"], strict=True))
    assert at1[8] > at1[2] and trends[1]["n"] == 9
    assert dict(zip(trends[1]["groups"], trends[1]["group_n"], strict=True)) == {2: 6, 8: 2, 16: 1}
    # the line joins medians of two or more trials only: C=16's single trial is not a median
    drawn = next(t for t in role_traces(fig, "median-ci") if t["meta"]["epoch"] == 1)
    assert drawn["meta"]["drawn"] == [2, 8] and drawn["x"] == [2, 8]
    assert trends[2]["n"] == 4 and trends[2]["group_n"] == [2, 2]
    # with n=2 a bootstrap interval is just the two values (the caption says so)
    assert (trends[2]["lo"][0], trends[2]["hi"][0]) == pytest.approx((0.788, 0.790))
    assert (trends[2]["lo"][1], trends[2]["hi"][1]) == pytest.approx((0.778, 0.784))


def test_comparison_overlays_the_runs_edfs_with_n_per_curve(tmp_path, capsys):
    a = write_fake_run(tmp_path / "shared", n_trials=12, seed=4, failures=False, max_epochs=3)
    b = write_fake_run(tmp_path / "cifar", n_trials=8, seed=5, space="resnext-cifar", max_epochs=3)
    out = tmp_path / "cmp.html"
    assert run_main(main, [str(a), str(b), "--out", str(out)]) == 0
    assert f"{out} (comparison of 2 runs)" in capsys.readouterr().out
    assert (a / "report.html").is_file() and (b / "report.html").is_file()
    figs = figures(out)
    assert set(figs) == {"edf-common", "edf-completed"}
    for key, fidelity in (("edf-common", "at epoch 1"), ("edf-completed", "completed (3 epochs)")):
        curves = {tr["meta"]["run"]: tr for tr in role_traces(figs[key], "edf-run")}
        assert set(curves) == {"shared", "cifar"}
        assert fidelity in figs[key]["layout"]["title"]["text"]
        for run_dir, name in ((a, "shared"), (b, "cifar")):
            t = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
            if key == "edf-common":
                rows = t[t["outcome"].isin(["completed", "stopped"])]
                err = 100 * (1 - rows["trial_id"].map(epoch_accuracy(run_dir, 1)))
            else:
                rows = t[t["outcome"] == "completed"]
                err = 100 * (1 - rows["best_val_accuracy"])
            tr = curves[name]
            assert tr["meta"]["n"] == len(rows) and f"(n={len(rows)})" in tr["name"]
            assert tr["x"][1:] == pytest.approx(sorted(err))
    html = out.read_text()
    assert "resnext-cifar" in html and "resnext-imagenet" in html


def test_comparison_of_runs_on_an_object_store(tmp_path, s3_uri, capsys):  # noqa: F811
    from nas.rundir import RunLocation

    uris = []
    for name, seed in (("a", 4), ("b", 5)):
        local = write_fake_run(tmp_path / name, n_trials=8, seed=seed, failures=False, max_epochs=2)
        loc = RunLocation.parse(s3_uri, name)
        loc.upload_dir(local)
        uris.append(loc.public_uri)
    out = tmp_path / "cmp.html"
    assert run_main(main, [*uris, "--out", str(out)]) == 0, capsys.readouterr().err
    html = out.read_text()
    assert set(figures(out)) == {"edf-common", "edf-completed"}
    assert RunLocation.parse(s3_uri, "a").display in html  # the table names where each run is


def test_trial_table_lists_every_trial_sortable_and_filterable(asha_run):
    """NNI's main view: every trial (failed ones too) in one table a click sorts and a box filters."""
    _, report, trials = asha_run
    html = report.read_text()
    table = html[html.index("id='trial-table'"):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr data-outcome='(\w+)'>", table)
    assert sorted(rows) == sorted(trials["outcome"])
    assert "class='sortable'" in html[html.index("id='trials'"):] and "data-table='trial-table'" in html
    assert "addEventListener('click'" in html and "type='search'" in html  # the sort and the filter
    # numeric cells carry their value for sorting: the accuracy column holds every measured trial's best
    best = trials.dropna(subset=["best_val_accuracy"]).sort_values("best_val_accuracy", ascending=False)
    first = re.search(r"<tr data-outcome='(\w+)'><td class='l'>([^<]+)</td>", table)
    assert first.group(2) == best[best["outcome"] == "completed"]["trial_id"].iloc[0]  # ranked order
    values = [float(v) for v in re.findall(r"<td data-v='([0-9.]+)'>[0-9.]+</td><td data-v='[0-9.]*'>", table)]
    assert values and max(values) == pytest.approx(100 * best["best_val_accuracy"].iloc[0])


@pytest.mark.parametrize(("space", "train_res", "warned"), [("resnext-imagenet", 28, True),
                                                            ("resnext-imagenet", 33, False),
                                                            ("resnext-cifar", 32, False)])
def test_header_warns_when_a_stage_trained_on_1x1_maps(tmp_path, space, train_res, warned):
    run_dir = write_fake_run(tmp_path / "run", n_trials=4, seed=2, failures=False, space=space, max_epochs=2)
    search = json.loads((run_dir / "search.json").read_text())
    (run_dir / "search.json").write_text(json.dumps({**search, "train_resolution": train_res}))
    html = write_report(run_dir).read_text()
    header = html[html.index("id='summary'"):html.index("id='top-k'")]
    assert ("stage 4 ran on 1x1 maps" in header) == warned
    if warned:
        assert "7x7, 4x4, 2x2, 1x1" in header and "--train-resolution 33" in header


def test_spread_trend_skips_single_trial_medians():
    from nas.report._plotting import spread_traces

    data = pd.DataFrame({"depth_total": [4, 4, 8, 12, 12, 12], "accuracy": [0.5, 0.6, 0.7, 0.8, 0.6, 0.7]})
    trend = next(t for t in spread_traces(data, "depth_total", lambda v: int(v), "#333", "median", True)
                 if t.meta["role"] == "trend")
    assert list(trend.x) == [4, 12] and list(trend.y) == pytest.approx([55.0, 70.0])
    one = pd.DataFrame({"depth_total": [4, 8, 12, 12], "accuracy": [0.5, 0.7, 0.8, 0.6]})
    trend = next(t for t in spread_traces(one, "depth_total", lambda v: int(v), "#333", "median", True)
                 if t.meta["role"] == "trend")
    assert list(trend.x) == [12] and trend.mode == "markers"  # one median: nothing to join


def test_comparison_gives_each_runs_best_and_median_with_intervals_and_links(tmp_path):
    from nas.report import evidence as ev
    from nas.report.compare import write_comparison

    a = write_fake_run(tmp_path / "shared", n_trials=12, seed=4, failures=False, max_epochs=3)
    b = write_fake_run(tmp_path / "cifar", n_trials=8, seed=5, space="resnext-cifar", max_epochs=3)
    write_report(a)  # b has no report: its row links nowhere
    out = tmp_path / "pages" / "cmp.html"
    out.parent.mkdir()
    write_comparison([a, b], out)
    html = out.read_text()
    assert " at at " not in html and "n at " not in html
    runs = html[html.index("id='runs-table'"):]
    assert '<a href="../shared/report.html">shared</a>' in runs[:runs.index("</table>")]
    assert "report.html\">cifar" not in runs
    for name, run_dir in (("shared", a), ("cifar", b)):
        t = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
        done = t[t["outcome"] == "completed"]
        err = 100 * (1 - done["best_val_accuracy"])
        # the completed-trials table: this run's row, best and median error with [lo, hi]
        part = html[html.index("<h3>completed trials</h3>"):]
        row = re.search(rf"<tr data-run='{name}'>(.*?)</tr>", part).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        assert cells[1] == str(len(done))
        best = re.fullmatch(r"([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", cells[2])
        med = re.fullmatch(r"([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", cells[3])
        assert float(best.group(1)) == pytest.approx(err.min(), abs=0.005)
        assert float(med.group(1)) == pytest.approx(err.median(), abs=0.005)
        assert float(best.group(2)) == pytest.approx(err.min(), abs=0.005)  # a resample's best is never lower
        assert float(best.group(1)) <= float(best.group(3))
        assert float(med.group(2)) <= float(med.group(1)) <= float(med.group(3))
        assert done.loc[err.idxmin(), "name"] in cells[4]
    # one trial: no interval (resampling one value says nothing)
    one = ev.RunEdf("x", ev.Fidelity(pd.DataFrame({"error": [12.0], "name": ["a"], "trial_id": ["t"]}), 1,
                                     "at epoch 1"), pd.DataFrame())
    s = ev.summarise_run(one)
    assert s.best == s.median == 12.0 and math.isnan(s.best_lo) and math.isnan(s.median_hi)
