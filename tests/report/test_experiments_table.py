"""`ablate exps`: one narrow row per experiment from `dvc exp show --json`'s shape."""
from ablation.report.experiments_table import table


def shown(arms: dict[str, dict], datasets=("cifar10", "cats_vs_dogs")) -> list[dict]:
    """`dvc exp show --json` of a baseline with one experiment per arm (its model params)."""
    def params(model):
        return {"params.yaml": {"data": {"datasets": list(datasets), "model": model, "train": {"epochs": 5}}}}
    metrics = {"reports/metrics.json": {"data": {d: {"test_accuracy": 0.61234, "train_error": 0.3, "flops": 8e7,
                                                      "test_accuracy_ci95_low": 0.5} for d in datasets}}}
    base = {"arch": "resnet_cifar", "depth": 20, "residual": True, "shortcut": "A"}
    return [{"rev": "workspace", "data": {"params": params(base)}},
            {"rev": "a" * 40, "data": {"params": params(base)},
             "experiments": [{"revs": [{"rev": str(i) * 40, "name": name,
                                        "data": {"params": params({**base, **model}), "metrics": metrics}}]}
                             for i, (name, model) in enumerate(arms.items())]}]


def test_a_four_arm_study_fits_in_120_columns_with_what_changed():
    text = table(shown({"resnet-cifar20": {}, "plain-cifar20": {"residual": False},
                        "resnet-cifar56": {"depth": 56}, "plain-cifar56": {"depth": 56, "residual": False}}))
    lines = text.splitlines()
    assert max(map(len, lines)) < 120, text
    assert lines[0].split() == ["experiment", "changed", "from", "cifar10", "cifar10", "cats_vs_dogs", "cats_vs_dogs"]
    assert lines[1].split() == ["its", "baseline", "acc", "train", "err", "acc", "train", "err"]
    plain56 = next(line for line in lines if line.startswith("plain-cifar56"))
    assert "depth=56 residual=false" in plain56 and plain56.split()[-4:] == ["0.612", "0.300", "0.612", "0.300"]
    assert next(line for line in lines if line.startswith("resnet-cifar20 ")).split()[1] == "(baseline)"


def test_a_key_named_twice_is_spelt_whole_and_no_experiment_is_said():
    text = table(shown({"both": {"residual": False, "options": {"residual": True}}}))
    assert "model.residual=false model.options.residual=true" in text
    assert table([{"rev": "workspace"}]).startswith("no experiments here yet")

