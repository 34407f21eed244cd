"""Reconciliation logic: pure comparisons of what two systems hold, no I/O."""
