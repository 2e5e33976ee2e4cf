"""The ZCU104 target (Vitis AI DPU): the target, the XIR lowering and .xmodel writer, the DPU facts, partition and estimate."""
