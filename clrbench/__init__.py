"""clrbench: a reproducible benchmark of learning-rate schedules on MNIST."""
