"""Write the workload of each trained network in ``bench/networks/`` beside its IR.

The networks were trained before training wrote workloads; this makes what training now writes
for them: the first :data:`model.audio.train.WORKLOAD_SAMPLES` test samples of the embedded
spoken digits (the data they were trained on), binned to the network's own steps, with their
labels::

    python -m bench.workloads            # writes bench/networks/<name>.workload.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NETWORKS_DIR = Path(__file__).resolve().parent / "networks"


def audio_workload(net, samples: int):
    """The first ``samples`` embedded test digits as a ``classify`` workload of ``net``."""
    from model.audio.pack import default_data
    from model.audio.shd import bin_counts, load as load_shd
    from model.ir import Workload
    test = load_shd(default_data()[1])
    binned = bin_counts(test, steps=int(net.meta["steps"]))
    return Workload(kind="classify", network=net.digest,
                    x=binned.x[:samples].astype(np.int64),
                    labels=np.asarray(test.labels[:samples], np.int64))


def main(argv=None) -> int:
    from model.audio.train import WORKLOAD_SAMPLES
    from model.ir import load, load_workload, save_workload, workload_path
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=WORKLOAD_SAMPLES)
    args = ap.parse_args(argv)
    for path in sorted(NETWORKS_DIR.glob("*.npz")):
        if path.name.endswith(".workload.npz"):
            continue
        net = load(path)
        out = save_workload(audio_workload(net, args.samples), workload_path(path))
        wl = load_workload(out, net)
        print(f"{out}: {wl.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
