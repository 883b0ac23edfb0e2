"""Print the simulation tables of docs/concepts/protocol.md (seeded; ~10 s on one core).

    python benchmarks/protocol_table.py > /tmp/table.md
    python benchmarks/protocol_table.py --naive

tests/test_simulate.py regenerates the tables and fails when the docs' copy differs.
``--naive`` prints the false-decision rate of the t-test over studies' mean differences on
shared seeds (the analysis the protocol rejects) when the seed effect is shared by every study.
"""

import sys

import numpy as np

from clrbench.analysis import simulate
from clrbench.analysis.protocol import standard_error


def naive(replicates: int = simulate.REPLICATES) -> str:
    lines = ["| Workload | Seed share | Studies | Naive t over studies | Crossed (protocol) |"]
    lines.append("|---|---:|---:|---:|---:|")
    for c in simulate.REFERENCES:
        for share in (0.5, 1.0):
            for studies in (3, 8):
                rng = np.random.default_rng([studies, int(share * 10)])
                y = simulate.draw(c, [0.0] * 4, studies, False, replicates, rng, share)
                rates = []
                for fresh in (True, False):  # "fresh" formula on shared seeds is the naive one
                    se, df = standard_error(y, fresh)
                    codes = simulate.outcomes(y.mean(axis=(-2, -1)), se, df, c.margin, 0.05)
                    rates.append(np.isin(codes, (simulate.BETTER, simulate.WORSE)).any(axis=1))
                cells = [c.workload, f"{share:g}", str(studies)]
                cells += [f"{rate.mean():.3f}" for rate in rates]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--naive" in sys.argv[1:]:
        print(naive(), end="")
    else:
        print(simulate.markdown_tables(simulate.simulate_all()), end="")
