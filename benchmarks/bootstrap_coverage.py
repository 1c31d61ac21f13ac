"""How the Frechet distance's bootstrap interval behaves: `.venv/bin/python -m benchmarks.bootstrap_coverage`.

Gaussian feature sets of known law (N(0, I) against N(shift, diag(s^2)), F features, N points each), at sizes like the
evaluate stage's: for each setting, the spread of the Frechet distance over fresh draws, then `bootstrap_interval` on
independent draws. Prints, per setting: the population value (N -> infinity), the mean over fresh draws at this N, the
width of their central 95%, the mean width of our 95% interval, how often it contains the fresh-draw mean, the mean
fraction of fresh-draw values inside it, and how often the plain percentile interval (not centred) contains its own
estimate. A statistical check, not a timing: its numbers do not depend on the machine's load (it took 10 minutes on a busy
2-core machine).
"""

from __future__ import annotations

import torch

from gpe_pipeline.core.metrics import _quantile, bootstrap_interval, frechet_distance

SETTINGS = ((32, 180, 0.0), (32, 180, 0.5), (64, 90, 0.15), (64, 180, 0.15), (256, 1000, 0.05))
FRESH_DRAWS, TRIALS, RESAMPLES, CONFIDENCE = 200, 20, 100, 0.95


def coverage(features: int, points: int, shift: float, seed: int = 0) -> list[str]:
    """One table row: population FD, fresh-draw mean and 95% width, our interval's width and coverage."""
    generator = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 1.5, features, dtype=torch.float64)
    offset = torch.full((features,), shift, dtype=torch.float64)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randn(points, features, generator=generator, dtype=torch.float64)
        return a, torch.randn(points, features, generator=generator, dtype=torch.float64) * scale + offset

    population = float(offset.square().sum() + (1 - scale).square().sum())
    fresh = torch.tensor([frechet_distance(*draw()) for _ in range(FRESH_DRAWS)], dtype=torch.float64)
    fresh_mean = float(fresh.mean())
    tail = (1 - CONFIDENCE) / 2
    widths, covers_mean, fresh_inside, plain_contains = [], 0, 0.0, 0
    for trial in range(TRIALS):
        a, b = draw()
        computed = []  # every value bootstrap_interval computes: the estimate, then each resample's

        def recorded(first: torch.Tensor, second: torch.Tensor) -> float:
            computed.append(frechet_distance(first, second))
            return computed[-1]

        estimate, low, high = bootstrap_interval(recorded, a, b, RESAMPLES, CONFIDENCE, seed=trial)
        widths.append(high - low)
        covers_mean += low <= fresh_mean <= high
        fresh_inside += float(((fresh >= low) & (fresh <= high)).double().mean())
        resampled = torch.tensor(computed[1:], dtype=torch.float64)  # the plain percentile interval's values
        plain_contains += _quantile(resampled, tail) <= estimate <= _quantile(resampled, 1 - tail)
    return [
        str(features),
        str(points),
        f"{shift}",
        f"{population:.2f}",
        f"{fresh_mean:.2f}",
        f"{float(fresh.quantile(1 - tail) - fresh.quantile(tail)):.2f}",
        f"{sum(widths) / TRIALS:.2f}",
        f"{covers_mean / TRIALS:.2f}",
        f"{fresh_inside / TRIALS:.2f}",
        f"{plain_contains / TRIALS:.2f}",
    ]


def main() -> None:
    header = ["F", "N", "shift", "population FD", "fresh-draw mean", "fresh-draw 95% width", "our 95% interval width"]
    header += ["ours contains fresh-draw mean", "fresh draws inside ours", "plain percentile contains its estimate"]
    rows = [coverage(*setting) for setting in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    print("\n".join(lines))  # noqa: T201
    print(  # noqa: T201
        f"\n{FRESH_DRAWS} fresh draws per setting; {TRIALS} intervals of {RESAMPLES} resamples at {CONFIDENCE:.0%}."
    )


if __name__ == "__main__":
    main()
