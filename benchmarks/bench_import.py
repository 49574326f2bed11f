"""`import dtwidgets` wall time in fresh interpreters (target <= 0.5 s; TransformerLens loads lazily).

Run: python benchmarks/bench_import.py   — prints the median of 5 runs and the ratio to the target.
"""
import statistics
import subprocess
import sys
import time

TARGET_S = 0.5


def once(stmt: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", stmt], check=True)
    return time.perf_counter() - t


def main():
    base = statistics.median(once("pass") for _ in range(5))
    for stmt in ("import dtwidgets", "import dtwidgets.widgets", "import dtwidgets.adapters",
                 "import dtwidgets.model"):
        med = statistics.median(once(stmt) for _ in range(5)) - base
        heavy = subprocess.run([sys.executable, "-c", f"import sys; {stmt}; print(sorted(m for m in "
                                "('transformer_lens', 'torch', 'plotly', 'minigrid') if m in sys.modules))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        note = f"; target {TARGET_S * 1000:.0f} ms; ratio {med / TARGET_S:.2f}" if stmt == "import dtwidgets" else ""
        print(f"{stmt:28s} median {med * 1000:6.0f} ms over interpreter start ({base * 1000:.0f} ms){note}; "
              f"heavy modules loaded: {heavy}")


if __name__ == "__main__":
    main()
