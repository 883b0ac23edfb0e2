"""The cross-workload comparison: the same schedules on several workloads, compared
(``analysis``), and its report with across.json (``report``, ``tables``, ``figures``)."""
