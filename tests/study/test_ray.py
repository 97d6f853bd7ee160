"""The study on a real Ray cluster (started here, two logical GPUs) with a bare
git repository and a directory DVC remote as the shared remotes: every run comes
back as a DVC experiment, runs get their own GPU, a failed run keeps its log and
--resume reruns only what left no experiment. Tiny settings on the real archive."""
import json
from pathlib import Path

import pytest

from tests.conftest import BUILDER, ROOT, TINY, read_json, require_shared, set_params, sh, stage

pytestmark = pytest.mark.slow  # a Ray cluster and real runs

ray_cluster_utils = pytest.importorskip("ray.cluster_utils")


@pytest.fixture(scope="module")
def cluster():
    cluster = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 2})
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """The driver's checkout: committed, pushed to a bare git remote, with a default
    DVC remote holding the fetched and split data (the runs `dvc pull` it)."""
    require_shared()
    tmp_path = tmp_path_factory.mktemp("ray-study")
    root = tmp_path / "driver"
    root.mkdir()
    for name in ("ablation", "dvc.yaml", "params.yaml", ".gitignore"):  # .gitignore: .cache/ stays out
        sh(ROOT, "cp", "-r", str(ROOT / name), str(root / name))
    set_params(root, {**TINY, "datasets": ["cifar10"], "train": {**TINY["train"], "seeds": [0, 1]}})
    (root / "nets").mkdir()
    (root / "nets" / "mynet.py").write_text(BUILDER)  # a network of the user's own, committed with the baseline
    remote, storage = tmp_path / "remote.git", tmp_path / "dvc-storage"
    sh(tmp_path, "git", "init", "-q", "--bare", str(remote))
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "CI"], ["dvc", "init", "-q"],
                    ["dvc", "remote", "add", "-d", "shared", str(storage)],
                    ["dvc", "repro", "-q", "split"], ["dvc", "push", "-q"],
                    ["git", "add", "-A"], ["git", "commit", "-qm", "baseline"],
                    ["git", "remote", "add", "origin", str(remote)], ["git", "push", "-q", "origin", "HEAD"]):
        sh(root, *command)
    return root


def study(root: Path, cluster, *args: str, check=True):
    return stage(root, "study", "--engine", "ray", "--address", cluster.address, *args, check=check)


def folder(root: Path, out: str) -> Path:
    """The study's folder, from its first line: `study NAME (reports/NAME/), arms: ...`."""
    return root / "reports" / out.split("study ", 1)[1].split(" ", 1)[0]


def exp_names(root: Path) -> set[str]:
    rows = json.loads(sh(root, "dvc", "exp", "show", "--json").stdout)
    return {exp["name"] for row in rows for exp in (row.get("experiments") or []) if exp.get("name")} | {
        e["name"] for row in rows for exp in (row.get("experiments") or []) for e in (exp.get("revs") or [])
        if e.get("name")}


def test_ray_study_runs_each_arm_and_seed_as_an_experiment(driver, cluster):
    out = study(driver, cluster).stdout
    reports = folder(driver, out)
    runs = {"resnet-cifar8-s0", "resnet-cifar8-s1", "plain-cifar8-s0", "plain-cifar8-s1"}
    assert "study progress: 4 done, 0 running, 0 failed, 0 queued" in out
    assert runs <= exp_names(driver)  # pulled back: dvc exp show lists every run

    # Runs that overlapped in time held different GPUs.
    results = read_json(reports / "logs" / "runs.json")
    assert {r["name"] for r in results} == runs
    overlapping = [(a, b) for a in results for b in results
                   if a["name"] < b["name"] and a["started"] < b["ended"] and b["started"] < a["ended"]]
    assert overlapping, "two runs should have run at once on the two logical GPUs"
    assert all(a["cuda_visible_devices"] != b["cuda_visible_devices"] for a, b in overlapping)

    study_md = (reports / "study.md").read_text()
    for arm in ("resnet-cifar8", "plain-cifar8"):
        row = next(line for line in study_md.splitlines() if line.startswith(f"| {arm} "))
        assert row.count("(n=2)") == 2, row  # both seeds' experiments aggregated into the arm
        assert (reports / "runs" / f"{arm}-s1" / "results" / "cifar10" / "seed1" / "train.json").exists()
    diff = sh(driver, "dvc", "metrics", "diff", "resnet-cifar8-s0", "plain-cifar8-s0",
              "--targets", "reports/metrics.json").stdout
    assert "cifar10.test_accuracy" in diff


def test_a_failed_run_keeps_its_log_and_resume_reruns_only_it(driver, cluster):
    # limit 4 leaves a class without a validation image: that run fails at split.
    failed = study(driver, cluster, "--grid", "data.limit=192,4", "--grid", "model.residual=true",
                   "-S", "train.seeds=[0]", "--retries", "0", check=False)
    assert failed.returncode == 1 and "resnet-cifar8-limit4-s0" in failed.stderr
    logs = folder(driver, failed.stdout) / "logs"
    log = (logs / "resnet-cifar8-limit4-s0.log").read_text()
    assert "data.limit" in log and "dvc exp run" in log  # the stage's own error, with the command
    assert not (logs / "resnet-cifar8-limit192-s0.log").exists()
    assert "resnet-cifar8-limit192-s0" in exp_names(driver)  # the other run finished

    fixed = study(driver, cluster, "--grid", "data.limit=192,40", "--grid", "model.residual=true",
                  "-S", "train.seeds=[0]", "--resume", "--name", "limits").stdout
    assert "1 run(s) already have experiments on origin: resnet-cifar8-limit192-s0" in fixed
    ran = [r["name"] for r in read_json(driver / "reports" / "limits" / "logs" / "runs.json")]
    assert ran == ["resnet-cifar8-limit40-s0"]
    assert {"resnet-cifar8-limit192-s0", "resnet-cifar8-limit40-s0"} <= exp_names(driver)
    assert "| resnet-cifar8-limit40 " in (driver / "reports" / "limits" / "study.md").read_text()


def test_a_builder_s_option_is_ablated_on_ray(driver, cluster):
    out = study(driver, cluster, "-S", "model.arch=nets.mynet:tiny", "--grid", "model.options.width=4,8",
                "--grid", "model.residual=true", "-S", "train.seeds=[0]", "--name", "own").stdout
    assert "arms: tiny-width4, tiny-width8" in out and {"tiny-width4-s0", "tiny-width8-s0"} <= exp_names(driver)
    record = read_json(driver / "reports" / "own" / "runs" / "tiny-width8-s0" / "results" / "cifar10" / "seed0"
                       / "train.json")
    assert record["builder"]["reference"] == "nets.mynet:tiny" and record["builder"]["options"]["width"] == 8


def test_until_decided_and_verify_run_on_ray(driver, cluster):
    """--until-decided adds each round's seeds as Ray runs and --verify reruns a run there,
    as both do on DVC's queue (the engine comes from engines/registry.py)."""
    first = study(driver, cluster, "--resume").stdout  # the first test's runs, where it ran
    reports = folder(driver, first)
    decided = study(driver, cluster, "--until-decided", "--max-seeds", "3")
    assert "looks at [2, 3]" in decided.stdout and "until decided: " in decided.stdout
    if "adding seeds up to 3" in decided.stdout:  # not decided at two seeds: the third ran on Ray
        assert {"resnet-cifar8-s2", "plain-cifar8-s2"} <= exp_names(driver)
        assert {"resnet-cifar8-s2", "plain-cifar8-s2"} <= {r["name"] for r in read_json(reports / "logs" / "runs.json")}
        assert (reports / "runs" / "resnet-cifar8-s2" / "results" / "cifar10" / "seed2" / "train.json").exists()
    assert "--until-decided" in (reports / "study.md").read_text()

    verified = study(driver, cluster, "--verify", "resnet-cifar8-s0")
    assert "verify-resnet-cifar8-s0" in exp_names(driver)
    assert "identical to the record" in verified.stdout, verified.stdout[-2000:]
