"""An ordinary PyTorch script: torch.compile with no backend named (Inductor by default).

    python examples/torch/plain_compile.py                 # Inductor on the host CPU
    .venv/bin/trnsim torch run examples/torch/plain_compile.py   # the same script on trnsim

Under `trnsim torch run` every such torch.compile call compiles for the simulated chip, and the
last run's summary is printed when the script ends.
"""

import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 10))
model.eval()
fast = torch.compile(model)
x = torch.randn(8, 64)
with torch.no_grad():
    err = (fast(x) - model(x)).abs().max().item()
print(f"max abs difference from eager PyTorch: {err:.3g}")
