"""`python -m pipeline.accounting MODEL`: neurons, synapses and energy per layer.

With every neuron firing, Ω_total(1) counts neurons, Ω_balance(1) layers and
Ω_syn(1) synapses (p = 1), and E_SNN = E_AC · Ω_syn(1) (Theorem 3.4).
"""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.energy import E_AC_PJ
from pipeline.models import MODELS, create_model, input_shape
from pipeline.neuron import neurons
from pipeline.penalties import PENALTIES, omega_all_firing
from pipeline.synapses import PSI_CONVENTIONS

__all__ = ["accounting"]


def accounting(model_name: str, psi: str = "padded", width: float = 1.0, classes: int = 10) -> dict:
    """Per-layer shapes, neuron and synapse counts and each penalty's Ω(1) term (p = 1) of a registered
    model, with totals."""
    shape = input_shape(model_name)
    model = create_model(model_name, in_channels=shape[0], input_size=shape[1],
                         num_classes=classes, width=width, psi=psi)
    named = neurons(model)
    counts = [m.psi for _, m in named]
    synapses_total = omega_all_firing(counts, "syn", 1)
    return {
        "model": model_name, "psi": psi, "width": width, "classes": classes,
        "input_shape": list(shape),
        "layers": [{"name": n, "shape": list(w.shape), "neurons": w.numel(), "synapses": int(w.sum()),
                    "omega_1": {k: float(pen.all_firing(w)) for k, pen in PENALTIES.items()}}
                   for (n, _), w in zip(named, counts)],
        "neurons_total": int(omega_all_firing(counts, "total", 1)),
        "layers_total": int(omega_all_firing(counts, "balance", 1)),
        "synapses_total": int(synapses_total),
        "energy_pj_all_firing": E_AC_PJ * synapses_total,
    }


def _table(report: dict) -> str:
    rows = [f"{report['model']} (input {'x'.join(map(str, report['input_shape']))}, "
            f"width {report['width']}, psi {report['psi']})",
            f"{'layer':<24}{'shape':>16}{'neurons':>12}{'synapses':>16}"]
    for layer in report["layers"]:
        shape = "x".join(map(str, layer["shape"]))
        rows.append(f"{layer['name']:<24}{shape:>16}{layer['neurons']:>12,}{layer['synapses']:>16,}")
    rows.append(f"{'total (' + str(report['layers_total']) + ' layers)':<40}"
                f"{report['neurons_total']:>12,}{report['synapses_total']:>16,}")
    rows.append(f"E_SNN with every neuron firing: {report['energy_pj_all_firing']:,.1f} pJ")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.accounting", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--psi", choices=PSI_CONVENTIONS, default="padded")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        report = accounting(args.model, args.psi, args.width, args.classes)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    print(json.dumps(report) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
