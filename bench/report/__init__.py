"""Tables and figures, built only from a run's result files."""
