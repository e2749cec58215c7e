"""The model-based soak's machine (`world.py`): imported by its test (tests/pitr/e2e/test_soak_states.py) and its
benchmark (benchmarks/soak_states.py)."""
