"""The record a run leaves: results.json (its one builder, results.py, and the architecture section
the report places the run by), checkpoints and weights read safely, the console summary, the W&B
dashboard and a multirun's summary."""
