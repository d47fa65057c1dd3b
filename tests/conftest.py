"""Shared test set-up: one torch thread (stable and fast on 2-core machines)."""
import torch

torch.set_num_threads(1)
