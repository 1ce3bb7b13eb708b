"""Cross-interaction and view-relational distillation: teachers, losses, training, evaluation, results."""
