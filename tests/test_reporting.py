from ablation import reporting


def test_history_round_trips_through_the_plot_csvs(tmp_path):
    history = {"loss": [2.0, 1.5], "val_loss": [2.2, 1.9], "accuracy": [0.3, 0.5], "val_accuracy": [0.25, 0.4],
               "learning_rate": [0.1, 0.01]}
    reporting.write_history_csvs(history, tmp_path, "cifar10")
    assert (tmp_path / "loss" / "cifar10.csv").read_text().splitlines()[0] == "epoch,train_loss,val_loss"
    texts = {kind: (tmp_path / kind / "cifar10.csv").read_text() for kind in reporting.PLOT_CSVS}
    back = reporting.read_history_csvs(texts)
    assert back == {k: v for k, v in history.items() if k != "learning_rate"}


def predictions(correct: list[bool]) -> str:
    rows = [f"id{i},cat,{'cat' if ok else 'dog'},0.9" for i, ok in enumerate(correct)]
    return "\n".join(["id,label,predicted,confidence", *rows])


def arm(name, residual, depth, accuracy, correct):
    metrics = {"test_accuracy": accuracy, "test_accuracy_std": 0.0, "diverged_runs": 0 if accuracy else 1,
               "trainable_params": 1000, "flops": 2e6, "train_seconds": 10.0, "seeds": 1}
    history = "epoch,train_loss,val_loss\n1,2.0,2.1\n2,1.0,1.2\n"
    return {"name": name, "failed": False, "overrides": [f"model.residual={str(residual).lower()}",
                                                          f"model.depth={depth}"],
            "params": {"model": {"residual": residual, "depth": depth}},
            "metrics": {"cifar10": metrics}, "histories": {"cifar10": {"loss": history, "accuracy": None}},
            "predictions": {"cifar10": predictions(correct)}}


def test_study_report_pairs_twins_and_tests_them(tmp_path):
    results = [arm("resnet20", True, 20, 0.9, [True] * 20), arm("plain20", False, 20, 0.5, [True] * 10 + [False] * 10),
               arm("resnet56", True, 56, 0.8, [True] * 20), arm("plain56", False, 56, None, [False] * 20),
               {"name": "resnet110", "failed": True, "overrides": ["model.residual=true", "model.depth=110"]}]
    text = reporting.write_study_report(results, tmp_path)
    assert "| resnet20       | plain20      | cifar10   | +0.4000         | 0.00195" in text  # 10 discordant pairs
    assert "n/a (diverged)" in text and "failed: see `dvc queue logs resnet110`" in text
    assert (tmp_path / "study" / "cifar10_accuracy_vs_depth.png").stat().st_size > 10_000
