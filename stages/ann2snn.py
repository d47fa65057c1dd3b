"""Stage `ann2snn`: QReLU ANNs trained with a synaptic-operation penalty, converted and run for T steps."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import ann2snn

if __name__ == "__main__":
    run_stage(lambda: ann2snn(profiled_params(), DEFAULT))
