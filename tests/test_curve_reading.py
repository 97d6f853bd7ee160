"""The curves' evidence for a claim the study report could not show: still
learning, overfitting or settled, and whether a better fit carried over."""
from ablation.curve_reading import Curves, why


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
    text = why(residual, plain, on_test=True)
    assert text.startswith("Why, from the curves: resnet-34 fits its training images better than plain-34 "
                           "(0.100 against 0.280)")
    assert "did not carry over to held-out images" in text and "resnet-34 overfit" in text
    assert "plain-34 was still learning" in text
    reversed_fit = why(plain, residual, on_test=False)  # the expected-better net fits worse
    assert "is not there at this length of training" in reversed_fit
    both_settled = why(Curves("a", [0.3, 0.299], []), Curves("b", [0.3, 0.2995], []), on_test=True)
    assert "about as well" in both_settled and "both had settled" in both_settled
