"""What the training code does with a configuration, as a number stored in every run record.

Run ids hash a run's configuration, not the code that trains it. When a fix changes what the same
configuration trains, bump ``TRAINING_SEMANTICS``: ``run`` then retrains the runs recorded under an
older number (resume does not keep them) and ``load_results`` names them as stale instead of
mixing them into a report.

History:
1. (records without the field) schedule boundaries by float division: inside the training graph a
   per-epoch step decay dropped one epoch late; divergence was non-finite loss only.
2. boundaries by integer division of the step; divergence also when a batch loss exceeds
   10 x the first batch's loss or the weights turn non-finite.
3. the lean loop (``clrbench.train.loop``) trains by default: batches in the order of a seeded
   numpy permutation per epoch instead of Keras fit's ``tf.random.shuffle``; the same model,
   initial weights and optimizer (``trainer = "fit"`` keeps Keras fit).
4. ``time_s`` counts training only (the compiled training calls): evaluation and the work between
   epochs are left out; it was wall time since training began. The per-batch log is unchanged.
"""

TRAINING_SEMANTICS = 4
