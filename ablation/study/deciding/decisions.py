"""The study report's one decision rule, and what deciding more would take.

Every contrast the report tests on a dataset belongs to one of two families:
the primary contrasts the study was run for (its preset's `report.primary`:
`claims`, the paper's claims, and/or grid keys, every contrast of that key),
and every other contrast it tests (secondary). Holm's procedure adjusts each
family's p-values on its own. A verdict word ("yes", "no", "beyond seed
noise") comes only from a Holm-adjusted p below ALPHA; every p is printed with
its test and degrees of freedom; with one seed on a side there is no test and
no verdict. For each contrast the report also gives the seeds per arm that 80%
power needs at the first bar Holm sets in its family (ALPHA / contrasts), for
the observed difference and for the study's minimum effect of interest.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from ablation.core import escaping
from ablation.core.errors import ParamsError
from ablation.core.statistics import POWER, Comparison, holm, power, seeds_needed, spread_interval

ALPHA = 0.05  # "beyond seed noise": Holm-adjusted p below this
PRIMARY, SECONDARY = "primary", "secondary"
CLAIMS = "claims"  # report.primary's name for the paper's claims
NO_TEST = "one seed: no test"


NOT_DECIDED_YET = "not decided yet"  # a primary contrast open at an interim look


@dataclass(frozen=True)
class Design:
    """What a study's preset says about its report (`report:`): the primary contrasts
    (`claims` and/or grid keys; None: the claims where the study has them, else
    every grid contrast), the minimum effect of interest in accuracy, the seed
    budget of --until-decided, and whether it is a smoke test."""
    primary: tuple[str, ...] | None = None
    min_effect: float | None = None
    max_seeds: int | None = None
    smoke_test: bool = False
    caveats: tuple[str, ...] = ()
    looks: tuple[int, ...] | None = None  # seeds per arm at each look, when --until-decided ran the study
    reached: int | None = None  # seeds per arm at the last look the results complete (before the last: interim)

    @property
    def interim(self) -> bool:
        return bool(self.looks) and self.reached is not None and self.reached < self.looks[-1]

    @classmethod
    def parse(cls, value, where: str) -> Design:
        """A preset's `report:` mapping, checked; ParamsError naming the key and the fix."""
        if value is None:
            return cls()

        def fail(key, allowed):
            raise ParamsError(f"{where}: report.{key} is {value.get(key)!r}; allowed: {allowed}. "
                              "Fix: see studies/cifar10-cpu.yaml.")
        if not isinstance(value, dict) or set(value) - set(REPORT_KEYS):
            raise ParamsError(f"{where}: `report` must be a mapping of {', '.join(REPORT_KEYS)}. "
                              "Fix: see studies/cifar10-cpu.yaml.")
        primary, caveats = value.get("primary"), value.get("caveats", [])
        if primary is not None and (not isinstance(primary, list) or not primary
                                    or not all(isinstance(p, str) and p for p in primary)):
            fail("primary", f"a list of `{CLAIMS}` and/or grid keys")
        min_effect, max_seeds = value.get("min_effect"), value.get("max_seeds")
        if min_effect is not None and (isinstance(min_effect, bool) or not isinstance(min_effect, (int, float))
                                       or not 0 < min_effect < 1):
            fail("min_effect", "a difference in accuracy between 0 and 1")
        if max_seeds is not None and (isinstance(max_seeds, bool) or not isinstance(max_seeds, int)
                                      or not 2 <= max_seeds <= 1000):
            fail("max_seeds", "an integer from 2 to 1000")
        if not isinstance(value.get("smoke_test", False), bool):
            fail("smoke_test", "true or false")
        if not isinstance(caveats, list) or not all(isinstance(c, str) and c.strip() for c in caveats):
            fail("caveats", "a list of sentences")
        return cls(tuple(primary) if primary else None, min_effect, max_seeds, value.get("smoke_test", False),
                   tuple(caveats))


REPORT_KEYS = ("primary", "min_effect", "max_seeds", "smoke_test", "caveats")


@dataclass(frozen=True)
class ContrastDecision:
    """One contrast as the report prints it: its comparison and test, its family and
    Holm-adjusted p, and the family's size."""
    label: str
    comparison: Comparison
    test: str
    family: str
    holm_p: float | None
    family_size: int
    sequential: str | None = None  # a primary contrast of a study run in rounds: what the design decided

    @property
    def tested(self) -> bool:
        return self.comparison.p_value is not None

    @property
    def open_at_interim(self) -> bool:
        """Not decided at a look before the last of a study run in rounds: more seeds may decide it."""
        return (self.sequential or "").startswith(NOT_DECIDED_YET)

    @property
    def beyond_noise(self) -> bool:
        if self.sequential is not None:  # after stopping early, the fixed-design p would find noise too often
            return self.sequential.startswith("decided")
        return self.holm_p is not None and self.holm_p < ALPHA

    def test_label(self) -> str:
        """'paired t, df 1.0', 'Welch, df 1.4', or 'one seed: no test'."""
        if not self.tested:
            return NO_TEST
        return self.test + ("" if self.comparison.df is None else f", df {self.comparison.df:.1f}")

    def format_holm(self) -> str:
        return "" if self.holm_p is None else f"{self.holm_p:.3g}"

    def noise(self) -> str:
        """'paired t (df 1.0) p = 0.0428, Holm p = 0.128 (4 primary contrasts): within seed noise'."""
        if not self.tested:
            return f"{NO_TEST} (fewer than 2 finite runs on a side)"
        df = "" if self.comparison.df is None else f" (df {self.comparison.df:.1f})"
        return (f"{self.test}{df} p = {self.comparison.p_value:.3g}, Holm p = {self.holm_p:.3g} "
                f"({self.family_size} {self.family} contrast{'s' * (self.family_size > 1)})"
                + (f", group-sequential: {self.sequential}" if self.sequential is not None else "") + ": "
                + ("beyond seed noise" if self.beyond_noise else "not yet beyond seed noise"
                   if self.open_at_interim else "within seed noise"))

    def alpha(self) -> float:
        """The first bar Holm sets in this contrast's family: what seeds are planned for."""
        return ALPHA / self.family_size

    def seeds_for(self, effect: float | None) -> int | None:
        return seeds_needed(self.comparison, effect, self.alpha())

    def power_now(self, seeds: int) -> float | None:
        if not any(self.comparison.variance_terms) or not self.comparison.difference:
            return None
        return power(self.comparison, self.comparison.difference, self.alpha(), seeds)


@dataclass
class Decisions:
    """The contrasts one dataset's report tests, keyed so that a contrast printed in
    several places (the gain table, a grid key's table, a claim) is one test with
    one Holm p. `add` every contrast, then `adjust`, then read them back."""
    design: Design
    has_claims: bool
    grid_keys: tuple[str, ...]
    sequential: dict | None = None  # with design.looks: {decided primary contrast: the look that decided it}
    _added: dict = field(default_factory=dict)
    _tested: dict = field(default_factory=dict)

    def primary_names(self) -> tuple[str, ...]:
        if self.design.primary is not None:
            return self.design.primary
        return (CLAIMS,) if self.has_claims else self.grid_keys

    def add(self, key: tuple, label: str, comparison: Comparison, test: str, group: str) -> None:
        """`group`: CLAIMS for a claim's contrast, a grid key for a grid key's, "" for
        any other (the curves' explanations, each family's own depth effect)."""
        if key in self._added:
            old_label, old_comparison, old_test, groups = self._added[key]
            self._added[key] = (old_label, old_comparison, old_test, groups | {group})
        else:
            self._added[key] = (label, comparison, test, {group})

    def adjust(self) -> None:
        families = {PRIMARY: [], SECONDARY: []}
        for key, (_, comparison, _, groups) in self._added.items():
            families[PRIMARY if groups & set(self.primary_names()) else SECONDARY].append(key)
        for family, keys in families.items():
            tested = [k for k in keys if self._added[k][1].p_value is not None]
            adjusted = dict(zip(tested, holm([self._added[k][1].p_value for k in tested])))
            for key in keys:
                label, comparison, test, _ = self._added[key]
                decided = None
                if family == PRIMARY and self.sequential is not None and self.design.looks:
                    look = self.sequential.get(key)
                    looks = self.design.looks
                    decided = (f"decided at {looks[look]} seeds per arm" if look is not None else
                               f"{NOT_DECIDED_YET} at {self.design.reached} of {looks[-1]} seeds per arm"
                               if self.design.interim else f"not decided within {looks[-1]} seeds per arm")
                self._tested[key] = ContrastDecision(label, comparison, test, family, adjusted.get(key),
                                                     max(len(tested), 1), decided)

    def __getitem__(self, key: tuple) -> ContrastDecision:
        return self._tested[key]

    def all(self) -> list[ContrastDecision]:
        return list(self._tested.values())

    def items(self):
        return self._tested.items()

    def family(self, family: str) -> list[ContrastDecision]:
        return [t for t in self._tested.values() if t.family == family]


def _seeds(n: int | None) -> str:
    return "n/a" if n is None else str(n)


def how_to_decide(decisions: Decisions, seeds_now: int, command: str) -> list[str]:
    """The report's "how to decide" part for one dataset: for every tested contrast,
    its power now and the seeds per arm 80% power needs, and the command that runs them."""
    design = decisions.design
    tested = [t for t in decisions.all() if t.tested]
    if not tested:
        return [f"With {seeds_now} seed{'s' * (seeds_now != 1)} per arm no contrast can be tested ({NO_TEST}); "
                "two seeds per arm are the least a test needs.", ""]
    headers = ["contrast", "family", "difference", "Holm p", "pooled seed std (df)",
               f"power now ({seeds_now} seeds)", "seeds for 80% power: observed difference"]
    if design.min_effect:
        headers.append(f"seeds: minimum effect {design.min_effect:g}")
    rows = []
    for t in sorted(tested, key=lambda t: t.family != PRIMARY):
        now = t.power_now(seeds_now)
        row = [t.label, t.family, f"{t.comparison.difference:+.4f}", t.format_holm(),
               f"{t.comparison.spread:.4f} ({t.comparison.spread_df})" if t.comparison.spread else "0",
               "n/a" if now is None else f"{now:.2f}", _seeds(t.seeds_for(t.comparison.difference))]
        if design.min_effect:
            row.append(_seeds(t.seeds_for(design.min_effect)))
        rows.append(row)
    undecided = [t for t in decisions.family(PRIMARY) if t.tested and not t.beyond_noise]
    wanted = [n for t in undecided if (n := t.seeds_for(t.comparison.difference)) is not None]
    widest = max((spread_interval(t.comparison) for t in tested if spread_interval(t.comparison)),
                 key=lambda interval: interval[1] / interval[0], default=None)
    lines = ["How many seeds would decide each contrast: the power of its test now, at the first bar Holm sets in its "
             f"family ({ALPHA} / the family's contrasts), and the seeds per arm that reach {POWER:.0%} power, from "
             "the pooled seed std of the arms it compares (for a paired contrast, of the per-seed differences). "
             "Empty cells: more than 1,000 seeds, or no spread to plan from.", "",
             tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if widest is not None:
        low, high = widest
        lines += [f"The seed std is itself estimated from few seeds: with the fewest degrees of freedom here its 95% "
                  f"CI runs from {low:.4f} to {high:.4f}, and the seeds needed scale with its square, so these "
                  "counts are a first estimate to be revised as seeds come in (`--until-decided` does).", ""]
    if not undecided:
        lines += ["Every primary contrast is decided at these seeds.", ""]
    elif wanted:
        budget = max(wanted)
        lines += [f"To decide the primary contrasts still undecided, run seeds in rounds until each is decided, "
                  f"up to {budget} seeds per arm (the most any of them needs at its observed difference): "
                  f"{escaping.code(f'{command} --until-decided --max-seeds {budget}')}.", ""]
    else:
        lines += ["The undecided primary contrasts would need more than 1,000 seeds per arm at their observed "
                  "differences: at this recipe the seeds cannot decide them.", ""]
    return lines
