"""The model-based soak with a small budget (tests/pitr/model/world.py): a few sequences of user actions, the
schedule, the sandbox's faults and days of time, from a fixed seed, every invariant checked after each step. A
change that breaks an invariant in a common interleaving fails here; `make soak-states` runs the full budget."""

from __future__ import annotations

from ..model.world import figures, replay_soak, run_soak

# The first two sequences hypothesis tries are its simplest (a DBA's backups only, then no step); a random one follows.
SEQUENCES, STEPS, SEED = 3, 5, 20261207


def test_a_few_random_sequences_keep_every_invariant(airflow_db, tmp_path):
    failure = run_soak(tmp_path / "sandbox", sequences=SEQUENCES, steps=STEPS, seed=SEED, shrink=False)
    result = figures(0.0)
    assert failure is None, failure
    assert not result["violations"], result
    assert result["sequences"] >= SEQUENCES and result["dag_runs"] >= SEQUENCES * 2, result


def test_a_window_check_wiping_the_target_of_the_step_before_does_not_hide_or_fake_a_difference(airflow_db, tmp_path):
    """Seed 13's finding (5 x 40): three restores, the third into target0 wiped and made again as both targets were
    full, then the window check after that step wiped target0 once more for its own restore. The model compared the
    third restore only then, with the check's rows in its target (2850 records against the source's 499 at T): a
    violation of the harness, not the product. Each restore is now compared the moment it ends."""
    inside = [("restore_inside_the_window", 0, fraction) for fraction in (0.2, 0.5, 0.1)]
    state = replay_soak(tmp_path / "sandbox", inside, check_window_every=3)
    restores = [run for run in state.world.runs if run.kind == "restore"]
    assert len(restores) == 4 and all(run.state == "success" and run.checked for run in restores), restores
    assert restores[2].target == restores[3].target, "the check reused the step's target: the interleaving is gone"
