"""Trained accuracy of uniform vs NeuralScale scaling at 0.25x and 0.5x, on
scikit-learn's digits (upsampled to 3x16x16) with a small VGG-style CNN.

Runs architecture descent to get a profile for the model, then for each ratio
and method scales the model, trains it from scratch with identical settings
and seeds, and evaluates it on held-out digits. Prints a markdown table
(mean and spread over --seeds training seeds).

    .venv/bin/python bench/neuralscale_vs_uniform.py [--epochs 15] [--seeds 3]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from digits import save_digits, small_vgg  # noqa: E402

from ncc.study.architecture_descent import SearchOptions, search  # noqa: E402
from ncc.core.datasets import load_dataset  # noqa: E402
from ncc.compiler.loader import input_shape, load_model  # noqa: E402
from ncc.compiler.pass_manager import PassManager  # noqa: E402
from ncc.compiler.pipeline import channel_groups  # noqa: E402
from ncc.study.training import TrainOptions, evaluate, torch_predictor, train  # noqa: E402
from ncc.passes import ScaleChannels, neuralscale  # noqa: E402
from ncc.passes.base import PassContext  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-iterations", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train_path, test_path = save_digits(folder)
        model = channel_groups(load_model(str(small_vgg(folder / "small.onnx"))))[0]
        shape = input_shape(model)
        train_data, test_data = load_dataset(str(train_path), shape), load_dataset(str(test_path), shape)
        profile_path = folder / "profile.json"
        search_options = SearchOptions(iterations=args.search_iterations, epochs=4, prune_every=4, prune_step=2,
                                       train=TrainOptions(epochs=4, augment=False))
        neuralscale.save_profile(search(model, train_data, search_options, str(folder / "records"),
                                        progress=lambda line: None), profile_path)
        print(f"digits: {len(train_data.x)} training, {len(test_data.x)} held-out samples; "
              f"{args.epochs} epochs from scratch, SGD lr 0.05 cosine, seeds 0..{args.seeds - 1}\n")
        print("| ratio | method | widths | params | top-1 (mean ± std) |")
        print("|---|---|---|---|---|")
        for ratio in (0.25, 0.5, 1.0):
            for method in ("uniform", "neuralscale"):
                if ratio == 1.0 and method == "neuralscale":
                    continue
                manager = PassManager([ScaleChannels(method, ratio, profile=str(profile_path))])
                scaled = manager.run(model, PassContext())
                stats = manager.records[0].stats
                scores = [evaluate(torch_predictor(train(scaled, train_data, TrainOptions(
                    epochs=args.epochs, augment=False, reinit=True, seed=seed))), test_data)["top1"]
                          for seed in range(args.seeds)]
                widths = "/".join(str(w["final"]) for w in stats["widths"])
                print(f"| {ratio} | {method} | {widths} | {stats['params_after']:,} | "
                      f"{100 * np.mean(scores):.1f} ± {100 * np.std(scores):.1f} |", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
