"""Evaluation: agents, success-rate reports, reproduction of the whole pipeline."""
