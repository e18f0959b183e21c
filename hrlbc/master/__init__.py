"""The PPO master over skills: skill env, feature extractors, training."""
