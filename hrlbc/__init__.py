"""hrlbc: learning to combine primitive skills (RLBC) on a simulated UR5."""

__version__ = "0.1.0"
