"""Training runs: the loop, resumable states, distillation, and releasing a run as a model."""
