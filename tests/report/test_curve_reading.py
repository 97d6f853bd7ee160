"""The curves' evidence for a claim the study report could not show: at chance,
still learning, overfitting or settled, and whether a better fit carried over."""
from ablation.core.statistics import welch
from ablation.report.curve_reading import Curves, chance_note, why
from ablation.study.deciding.decisions import SECONDARY, ContrastDecision


def gap(a, b) -> ContrastDecision:
    """The test of two arms' final training errors as the report makes it (a family of one)."""
    comparison = welch(a, b)
    return ContrastDecision("training error gap", comparison, "Welch", SECONDARY, comparison.p_value, 1)


def test_a_net_still_learning_overfitting_or_settled_is_named_so():
    learning = Curves("plain-34", [0.45, 0.38, 0.30], [0.40, 0.33, 0.28])
    overfit = Curves("resnet-34", [0.40, 0.25, 0.10], [0.30, 0.24, 0.29])
    settled = Curves("resnet-50", [0.40, 0.301, 0.296], [0.35, 0.31, 0.30])
    assert learning.still_learning and not learning.overfitting
    assert overfit.overfitting and overfit.best_val_epoch == 2
    assert not settled.still_learning and not settled.overfitting
    assert "still learning when training stopped (training error fell 0.080" in learning.state()
    assert "overfitting" in overfit.state() and "best 0.240, epoch 2" in overfit.state()
    assert "settled" in settled.state()


def test_why_says_whether_a_better_fit_carried_over_to_held_out_images():
    residual = Curves("resnet-34", [0.40, 0.25, 0.10], [0.30, 0.24, 0.29])  # fits better, overfits
    plain = Curves("plain-34", [0.45, 0.30, 0.28], [0.35, 0.30, 0.28])
    text = why(residual, plain, on_test=True, gap=gap([0.10, 0.11, 0.09], [0.28, 0.29, 0.27]))
    assert text.startswith("Why, from the curves: resnet-34 fits its training images better than plain-34 "
                           "(0.100 against 0.280; Welch (df 2.0) p = 0.00205, Holm p = 0.00205 "
                           "(1 secondary contrast): beyond seed noise)")
    assert "did not carry over to held-out images" in text and "resnet-34 overfit" in text
    noisy = why(residual, plain, on_test=True, gap=gap([0.10, 0.30], [0.28, 0.29]))
    assert "within seed noise" in noisy and "optimizes better" not in noisy  # no reason without its number
    assert "do not separate from noise either" in why(residual, plain, on_test=True)
    assert "plain-34 was still learning" in text
    # the expected-better net fits worse
    reversed_fit = why(plain, residual, on_test=False, gap=gap([0.28, 0.29, 0.27], [0.10, 0.11, 0.09]))
    assert "is not there at this length of training" in reversed_fit
    both_settled = why(Curves("a", [0.3, 0.299], []), Curves("b", [0.3, 0.2995], []), on_test=True)
    assert "about as well" in both_settled and "both had settled" in both_settled


def test_a_net_that_never_left_chance_is_named_so_and_not_told_to_train_longer():
    stuck = Curves("plain-50", [0.499, 0.494, 0.489, 0.488, 0.475], [0.50, 0.50, 0.498, 0.467, 0.507], 0.5)
    learning = Curves("resnet-50", [0.477, 0.455, 0.445, 0.443, 0.43], [0.49, 0.43, 0.41, 0.48, 0.40], 0.5)
    assert stuck.at_chance and stuck.still_learning  # its last drop is 0.013, yet it never learned
    assert not learning.at_chance and learning.still_learning
    assert not Curves("ten-class", [0.88, 0.86], [], 0.9).at_chance  # 0.86 is 0.04 below chance's 0.9
    assert "it never left chance (guessing's error is 0.500): it did not learn" in stuck.state()
    text = why(learning, stuck, on_test=True)
    assert "plain-50 never left chance: the optimizer did not train it" in text
    assert "resnet-50 was still learning when training stopped" in text  # and plain-50 is not among them
    note = chance_note(learning, stuck)
    assert note.startswith("Note, from the curves: plain-50's training error by epoch 0.499")
    assert "resnet-50" not in note
    assert chance_note(learning) == "" and not Curves("no classes known", [0.5, 0.5], []).at_chance


def test_a_better_fit_that_held_on_test_within_seed_noise_is_not_called_lost():
    residual = Curves("resnet-34", [0.43, 0.37, 0.31], [0.40, 0.35, 0.33])
    plain = Curves("plain-34", [0.48, 0.46, 0.43], [0.45, 0.43, 0.41])
    fit = gap([0.31, 0.30, 0.32], [0.43, 0.44, 0.42])
    held = why(residual, plain, on_test=True, claimed_way=True, gap=fit)
    assert "held-out images show it too, by less than these seeds can confirm" in held
    assert "did not carry over" not in held
    assert "did not carry over to held-out images" in why(residual, plain, on_test=True, gap=fit)


def test_a_fall_in_the_last_epoch_at_the_lowest_learning_rate_is_not_called_still_learning():
    """The CPU study's schedule: lr 0.1, then 0.01 and 0.001 in the last two epochs."""
    compressed = Curves("resnet-20", [0.62, 0.43, 0.34, 0.29, 0.277], [0.5, 0.4, 0.3, 0.28, 0.278],
                        learning_rate=(0.1, 0.1, 0.1, 0.01, 0.001))
    assert compressed.at_lowest_rate and not compressed.still_learning
    assert "ran at the schedule's lowest learning rate (0.001)" in compressed.state()
    text = why(compressed, Curves("plain-20", [0.65, 0.48, 0.4, 0.34, 0.33], [], learning_rate=(0.1,) * 5),
               on_test=True)
    assert "resnet-20 was still learning" not in text and "plain-20 was still learning" in text
