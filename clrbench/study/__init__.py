"""The equal-budget study: every schedule family tuned with the same number of trials on a
validation split, the winners re-run on the test set, their rates swept for sensitivity.

Everything that is the study lives here: its config and search space (``config``, ``space``),
presets, the protocol and its state (``protocol``, ``state``), selection (``select``), repeats
over independent tunings (``repeats``), its analysis (``analysis``) and its report (``report``,
``tables``, ``choice_tables``, ``figures``, ``prose``, ``summary``).
"""
