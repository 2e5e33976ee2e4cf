"""The int8 schemes ncc emits, one per kind of board, as plain facts that
ncc.passes.ort_quantize turns into ONNX Runtime quantizer settings.

tensorrt (Jetson AGX Xavier, TensorRT 8.5 explicit quantization): what the
    TensorRT docs ask of a Q/DQ network. Symmetric int8 everywhere (zero points
    0), weights per output channel (axis 0) kept float behind their own Q/DQ
    pair, one Q/DQ pair per consumer, biases float (TensorRT 8.5 dequantizes
    int8 only, never int32), Q/DQ on the inputs of weighted layers and on both
    inputs of every Add (so a residual Add fuses into the convolution before it)
    but not on a convolution's own output, which stays fused with its Relu.
dpu (ZCU104, Vitis AI DPU): per-tensor symmetric int8 whose every scale is a
    power of two (the DPU shifts, it does not multiply), Q/DQ after Relu so
    Conv+Relu stay one DPU instruction, biases int8 with their own power-of-two
    scale, and the network's outputs fixed too (so the classifier runs on the
    DPU), a concat's inputs at one scale. The exponents are searched by
    ncc.passes.pow2_scales.
generic (this host and the Cortex-A72, ONNX Runtime's CPU provider; TVM):
    activations uint8 asymmetric per tensor, weights int8 symmetric per output
    channel in 7 bits ([-64, 64]), biases int32: ORT's "U8S8" with
    reduce_range.
    - uint8 activations give ReLU outputs all 256 levels instead of 128, let
      the quantizer fold Relu/Clip into the activation range, and are the
      operand order of MLAS's integer kernels (x86 vpmaddubsw and VNNI
      vpdpbusd multiply u8 by s8; ARM64 has U8X8 kernels). Measured with ORT
      1.32 on an AVX2 host on this repository's zoo models, U8S8 ran 1.0-1.3x
      faster than symmetric S8S8, which keeps every Relu as a float node.
    - 7-bit weights: on x86 without VNNI (this host) vpmaddubsw adds two
      u8*s8 products in int16 and saturates, which 8-bit weights reach: a
      small CNN on sklearn's digits fell from 96.7% (fp32) to 89.7% top-1,
      and was 96.9% with 7-bit weights. VNNI and ARM64 do not saturate; there
      the lost bit costs little, as each output channel has its own scale.
    - TVM's Relax ONNX frontend lowers QuantizeLinear/DequantizeLinear to its
      own quantize and dequantize ops whatever their types, so the choice costs
      it nothing.
"""

from dataclasses import dataclass

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Flavor:
    name: str
    activations: str  # "int8" or "uint8"
    symmetric_activations: bool
    per_channel_weights: bool
    seven_bit_weights: bool  # ORT's reduce_range: int8 weights within [-64, 64]
    bias: str  # "int32" (ORT's input_scale * weight_scale), "int8-pow2", or "float"
    weight_qdq_pair: bool = False  # float weights behind Q/DQ instead of int8 weights behind DQ
    dedicated_pairs: bool = False  # one Q/DQ pair per consumer
    quantize_layer_outputs: bool = True  # False: Q/DQ only where an output is consumed
    power_of_two_scales: bool = False
    max_opset: int | None = None
    standard_domain_only: bool = False
    extra_ops: tuple = ()  # op types to quantize beyond ONNX Runtime's defaults (the hard-activations pass's)

    def scheme(self) -> dict:
        """The scheme in words, for the manifest."""
        symmetry = "symmetric" if self.symmetric_activations else "asymmetric"
        weights = "per output channel" if self.per_channel_weights else "per tensor"
        return {"activations": f"{self.activations} {symmetry} per tensor",
                "weights": f"int8 symmetric {weights}" + (", 7-bit" if self.seven_bit_weights else ""),
                "biases": self.bias, "scales": "powers of two" if self.power_of_two_scales else "any"}


FLAVORS = {
    "tensorrt": Flavor("tensorrt", activations="int8", symmetric_activations=True, per_channel_weights=True,
                       seven_bit_weights=False, bias="float", weight_qdq_pair=True, dedicated_pairs=True, quantize_layer_outputs=False,
                       max_opset=17, standard_domain_only=True, extra_ops=("HardSigmoid",)),
    "dpu": Flavor("dpu", activations="int8", symmetric_activations=True, per_channel_weights=False,
                  seven_bit_weights=False, bias="int8-pow2", quantize_layer_outputs=False, power_of_two_scales=True,
                  extra_ops=("HardSigmoid",)),
    "generic": Flavor("generic", activations="uint8", symmetric_activations=False, per_channel_weights=True,
                      seven_bit_weights=True, bias="int32"),
}
