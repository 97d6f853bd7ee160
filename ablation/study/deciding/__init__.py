"""How a study decides: its contrasts (comparisons, claims, contrasts), the decision
rule over them (decisions) and the group-sequential design that adds seeds until
they are decided (sequential, rounds). The report renders what is decided here."""
