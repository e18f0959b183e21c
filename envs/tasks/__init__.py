"""The reference tasks. Each module holds one task: its env, its skills, its skill-sequence sampler."""
