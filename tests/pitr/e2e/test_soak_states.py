"""The model-based soak with a small budget (tests/pitr/model/world.py): a few sequences of user actions, the
schedule, the sandbox's faults and days of time, from a fixed seed, every invariant checked after each step. A
change that breaks an invariant in a common interleaving fails here; `make soak-states` runs the full budget."""

from __future__ import annotations

from ..model.world import figures, run_soak

# The first two sequences hypothesis tries are its simplest (a DBA's backups only, then no step); a random one follows.
SEQUENCES, STEPS, SEED = 3, 5, 20261207


def test_a_few_random_sequences_keep_every_invariant(airflow_db, tmp_path):
    failure = run_soak(tmp_path / "sandbox", sequences=SEQUENCES, steps=STEPS, seed=SEED, shrink=False)
    result = figures(0.0)
    assert failure is None, failure
    assert not result["violations"], result
    assert result["sequences"] >= SEQUENCES and result["dag_runs"] >= SEQUENCES * 2, result
