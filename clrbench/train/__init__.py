"""Training one run in this process (TensorFlow lives here): the workload's model, the lean
loop every command trains with, the in-graph batch log and the run's divergence rule."""
