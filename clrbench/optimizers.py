"""clrbench's own Keras 3 optimizers, for any Keras model's ``compile``.

- :class:`ScheduleFreeSGD`, :class:`ScheduleFreeAdamW`: schedule-free learning (Defazio et al.
  2024), exact to the released ``schedulefree`` package's reference implementations; evaluate
  at ``optimizer.evaluation_weights()`` (``clrbench.train.schedule_free``).
- :class:`AdamW`, :class:`NAdamW`: AlgoPerf's baseline optimizers (``clrbench.train.adamw``).

Importing this module imports Keras. ``docs/guides/optimizers.md`` says how clrbench runs them.
"""

from __future__ import annotations

from clrbench.train.adamw import AdamW, NAdamW
from clrbench.train.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

__all__ = ["AdamW", "NAdamW", "ScheduleFreeAdamW", "ScheduleFreeSGD"]
