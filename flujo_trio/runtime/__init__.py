"""The execution core: one actor per step kind, the governor, and the runner."""
