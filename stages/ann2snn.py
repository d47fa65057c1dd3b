"""Stage `ann2snn@ITEM`: QReLU ANNs trained with a synaptic-operation penalty, converted and run for T steps."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "ann2snn")
