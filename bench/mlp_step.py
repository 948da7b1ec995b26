"""Training speed of the 784-300-100-10 MLP: a bare nervenet loop vs PyTorch vs NumPy.

The core-engine benchmark: ``bench/mlp.py`` restricted to the systems that measure the engine
itself, without ``Model.fit`` or scikit-learn: ``loop`` (a bare loop over
``nervenet.functional``: F.linear, F.relu, F.sparse_categorical_cross_entropy(from_logits=True),
loss.backward(), in-place SGD on p.data under no_grad), ``torch`` (the same loop in PyTorch
eager) and ``numpy`` (forward and backward written by hand). Same network, data, initial
weights, batches, thread count and fresh-process rules as ``bench/mlp.py``; see there.

    python bench/mlp_step.py                 # 2 threads, batch 32 and 256, 3 rounds
    python bench/mlp_step.py --threads 1 --clock cpu
"""

import mlp

if __name__ == "__main__":
    mlp.main(default_systems=("loop", "torch", "numpy"),
             title="MLP 784-300-100-10 training step, float32, SGD, MNIST 5k")
