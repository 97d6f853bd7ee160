"""Why a claim of the study report came out as it did, read from the arms'
per-epoch curves (mean over seeds): did a net learn at all (its training error
never left chance's), was it still learning when training stopped
(underfitting: more epochs would move it), did its validation error climb while
its training error fell (overfitting), or had it settled? And did a net that
fits its training images better also do better on held-out ones? A reason is
given only with the number behind it: the gap in training error with its test
(decisions.ContrastDecision), the last epoch's learning rate, its fall in training error.

The training error is the fit loop's: a running mean over the epoch on
augmented images, while the validation error is measured after the epoch on
plain ones, so validation can sit below training without anything being wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

STILL_LEARNING = 0.01  # the training error fell by more than this over the last epoch
OVERFIT_RISE = 0.02  # the last validation error this far above its best epoch's
CLOSE = 0.01  # two training errors within this are "as well"
NEAR_CHANCE = 0.03  # a training error that never fell this far below chance's: the net did not learn


@dataclass(frozen=True)
class Curves:
    """One arm's mean training and validation error per epoch."""
    name: str
    train_error: list[float]
    val_error: list[float]
    chance_error: float | None = None  # 1 - 1/classes: guessing's error on balanced classes
    learning_rate: tuple[float, ...] = ()  # per epoch, as logged at its end

    @property
    def at_chance(self) -> bool:
        """The training error never fell NEAR_CHANCE below guessing's: the net did not learn."""
        return (self.chance_error is not None and bool(self.train_error)
                and min(self.train_error) > self.chance_error - NEAR_CHANCE)

    @property
    def last_drop(self) -> float | None:
        """How much the training error fell over the last epoch."""
        return self.train_error[-2] - self.train_error[-1] if len(self.train_error) >= 2 else None

    @property
    def at_lowest_rate(self) -> bool:
        """The last epoch ran at the schedule's lowest learning rate, after a drop: its
        fall in training error is the schedule's end (and partly the epoch's running
        mean catching up with the drop), no sign that more epochs would help, since a
        longer run moves the drops too."""
        rates = self.learning_rate
        return len(rates) >= 2 and rates[-1] == min(rates) and rates[0] > rates[-1]

    @property
    def still_learning(self) -> bool:
        return self.last_drop is not None and self.last_drop > STILL_LEARNING and not self.at_lowest_rate

    @property
    def best_val_epoch(self) -> int | None:
        """1-based epoch of the lowest validation error."""
        return min(range(len(self.val_error)), key=self.val_error.__getitem__) + 1 if self.val_error else None

    @property
    def overfitting(self) -> bool:
        """The validation error rose from its best while the training error went on falling."""
        if not self.val_error or self.best_val_epoch == len(self.val_error):
            return False
        best = self.val_error[self.best_val_epoch - 1]
        later_train = self.train_error[self.best_val_epoch - 1:]
        return self.val_error[-1] - best > OVERFIT_RISE and later_train[-1] < later_train[0]

    def state(self) -> str:
        """'name was still learning: training error 0.312 -> 0.281 over the last epoch; ...'."""
        if not self.train_error:
            return f"{self.name} has no training curve"
        train = " -> ".join(f"{e:.3f}" for e in self.train_error)
        text = f"{self.name}'s training error by epoch {train}"
        if self.val_error:
            best = self.best_val_epoch
            text += (f", validation error {self.val_error[-1]:.3f} at the end (best {self.val_error[best - 1]:.3f}, "
                     f"epoch {best})")
        if self.at_chance:
            return text + f": it never left chance (guessing's error is {self.chance_error:.3f}): it did not learn"
        if self.overfitting:
            return text + ": overfitting (validation error rising from its best while training error falls)"
        if self.at_lowest_rate and self.last_drop is not None and self.last_drop > STILL_LEARNING:
            return text + f": its training error fell {self.last_drop:.3f} in the last epoch, which ran at the " \
                          f"schedule's lowest learning rate ({self.learning_rate[-1]:.3g}): the schedule's end, not " \
                          "a sign that more epochs would help (a longer run moves the drops too)"
        if self.still_learning:
            return text + f": still learning when training stopped (training error fell {self.last_drop:.3f} " \
                          "in the last epoch)"
        return text + ": settled (training error fell less than " \
                      f"{STILL_LEARNING} in the last epoch)"


def _fit(better: Curves, worse: Curves, gap) -> str:
    """How the two nets' final training errors compare, the fit the paper's claims are
    about, with the test of the gap (`gap`: decisions.ContrastDecision, or None)."""
    a, b = better.train_error[-1], worse.train_error[-1]
    tested = f"; {gap.noise()}" if gap is not None else ""
    if abs(a - b) <= CLOSE:
        return f"{better.name} and {worse.name} fit their training images about as well ({a:.3f} and {b:.3f}{tested})"
    lower, higher = (better, worse) if a < b else (worse, better)
    return (f"{lower.name} fits its training images better than {higher.name} "
            f"({lower.train_error[-1]:.3f} against {higher.train_error[-1]:.3f}{tested})")


def chance_note(*curves: Curves) -> str:
    """Where a claim was shown, what the curves add that its numbers hide: a net
    that never left chance, so the difference is one of learning at all."""
    stuck = [c for c in curves if c.at_chance]
    return " ".join(["Note, from the curves:"] + [f"{c.state()}." for c in stuck]) if stuck else ""


def why(expected_better: Curves, expected_worse: Curves, on_test: bool, claimed_way: bool = False,
        gap=None) -> str:
    """The curve evidence for a claim 'expected_better beats expected_worse' (on test
    error when on_test, else on training error) that was not shown; `claimed_way`:
    the difference went the claimed way, within seed noise; `gap`: the test of their
    final training errors (decisions.ContrastDecision), without which no optimization
    difference is claimed."""
    if not expected_better.train_error or not expected_worse.train_error:
        return "Why: one of the two has no training curve."
    parts = [_fit(expected_better, expected_worse, gap)]
    train_gap = expected_worse.train_error[-1] - expected_better.train_error[-1]
    shown = gap is not None and gap.beyond_noise
    if on_test and train_gap > CLOSE and shown:
        parts.append(f"so {expected_better.name} optimizes better, and held-out images show it too, by less than "
                     "these seeds can confirm" if claimed_way else
                     f"so {expected_better.name} optimizes better, but that did not carry over to held-out images")
    elif train_gap < -CLOSE and shown:
        parts.append(f"so the expected optimization advantage of {expected_better.name} is not there at this "
                     "length of training")
    elif abs(train_gap) > CLOSE and not shown:
        parts.append("a gap in training error that these seeds do not separate from noise either")
    pair = (expected_better, expected_worse)
    # A net at chance or overfitting: its training error's last move is no reason to train it longer.
    stuck = [c.name for c in pair if c.at_chance]
    learning = [c.name for c in pair if c.still_learning and not c.overfitting and not c.at_chance]
    overfit = [c.name for c in pair if c.overfitting and not c.at_chance]
    if stuck:
        parts.append(f"{' and '.join(stuck)} never left chance: the optimizer did not train "
                     f"{'it' if len(stuck) == 1 else 'them'} at this recipe (learning rate, epochs), a failure "
                     "to optimize, not to generalize")
    if learning:
        parts.append(f"{' and '.join(learning)} {'was' if len(learning) == 1 else 'were'} still learning when "
                     "training stopped (at a learning rate above the schedule's lowest), so a longer run "
                     "(`-S train.epochs=N`) could still separate them")
    if overfit:
        parts.append(f"{' and '.join(overfit)} overfit: validation error rose after its best epoch")
    if all(c.last_drop is not None and c.last_drop <= STILL_LEARNING and not c.at_chance for c in pair):
        parts.append(f"both had settled (training error fell less than {STILL_LEARNING} in the last epoch)")
    return "Why, from the curves: " + "; ".join(parts) + ". " + "; ".join(
        c.state() for c in pair) + "."
