"""The demo: a small numpy training loop tracked by carbonkit.

A two-layer network learns a synthetic classification task for a few epochs. carbonkit predicts
the whole run's footprint after the first epoch and reports the actual footprint at the end.

It measures with whatever this machine offers: RAPL counters, NVIDIA GPUs, or an estimate from
CPU utilisation and TDP. Where no plugin can offer any source, it falls back to a simulated
source and says "simulated" on every figure.

Location: CARBONKIT_LOCATION (default SE-SE3 here, served by the static yearly table; DK-DK1,
DK-DK2 and GB use live APIs when the network allows). Run logs go to ./carbonkit-logs.
"""

from __future__ import annotations

import os

import numpy as np

import carbonkit

EPOCHS = int(os.environ.get("DEMO_EPOCHS", "5"))


def make_data(rng: np.random.Generator, n: int = 16000, d: int = 64) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d,))
    y = (np.tanh(x @ w) + 0.1 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def train_epoch(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
    """One epoch of minibatch SGD on a 64-256-1 network; returns the mean loss."""
    losses = []
    order = rng.permutation(len(x))
    for _ in range(20):  # several passes, so an epoch takes a second or two
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            xb, yb = x[idx], y[idx]
            h = np.maximum(xb @ params["w1"] + params["b1"], 0.0)
            p = 1.0 / (1.0 + np.exp(-(h @ params["w2"] + params["b2"])))
            losses.append(float(-np.mean(yb * np.log(p + 1e-9) + (1 - yb) * np.log(1 - p + 1e-9))))
            g = (p - yb) / len(idx)
            gh = np.outer(g, params["w2"]) * (h > 0)
            params["w2"] -= 0.1 * h.T @ g
            params["b2"] -= 0.1 * g.sum()
            params["w1"] -= 0.1 * xb.T @ gh
            params["b1"] -= 0.1 * gh.sum(axis=0)
    return float(np.mean(losses))


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    params = {
        "w1": rng.normal(scale=0.1, size=(64, 256)),
        "b1": np.zeros(256),
        "w2": rng.normal(scale=0.1, size=256),
        "b2": np.zeros(()),
    }
    settings = dict(
        epochs=EPOCHS,
        predict_after=1,
        location=os.environ.get("CARBONKIT_LOCATION", "SE-SE3"),
        log_dir=os.environ.get("CARBONKIT_LOG_DIR", "carbonkit-logs"),
        tags={"example": "demo"},
    )
    try:
        tracker = carbonkit.Tracker(**settings)
    except carbonkit.NoPowerSourceError as exc:
        print(f"demo: {exc}\ndemo: falling back to a SIMULATED 65 W CPU: every figure below is simulated")
        tracker = carbonkit.Tracker(**settings, sources=[carbonkit.SimulatedSource(watts=65.0, component="cpu")])

    for epoch in range(EPOCHS):
        tracker.epoch_start()
        loss = train_epoch(params, x, y, rng)
        tracker.epoch_end()
        print(f"demo: epoch {epoch + 1}/{EPOCHS} loss {loss:.4f}", flush=True)

    report = tracker.stop()
    how = ", ".join(f"{c} {m}" for c, m in report.methods.items())
    print(
        f"demo: done: {report.energy_kwh * 1000:.4f} Wh ({how}), {report.co2eq_g:.4f} gCO2eq in "
        f"{report.location}; run log in {settings['log_dir']}/"
    )


if __name__ == "__main__":
    main()
