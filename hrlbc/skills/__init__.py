"""Behavior-cloned skills: model, augmentation, data, training, policy."""
