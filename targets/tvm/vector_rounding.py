"""TVM's loop vectorizer vectorizes a call only if its op is marked
TVectorizable, and TVM 0.27 marks round, floor, ceil and trunc but not
nearbyint: the round-half-to-even of every int8 requantize (relax.round
legalizes to it, as ONNX's QuantizeLinear rounds). A vectorized epilogue
loop holding it is emitted scalar, and LLVM re-vectorizes it only where it
can: in a depthwise kernel it chose the rows, gathering the accumulators and
storing the uint8 outputs one byte at a time (MobileNetV2's 16x16 int8
depthwise kernels 2.4x slower than their float32 counterparts for that, Zen 4).
nearbyint is elementwise and LLVM lowers llvm.nearbyint on any vector
(vrndscaleps, NEON frinti), so it is marked vectorizable here, before every
build: ncc's own and the tuning candidates' (built in worker processes)."""


def make_nearbyint_vectorizable():
    import tvm

    op = tvm.ir.Op.get("tirx.nearbyint")
    if not op.get_attr("TVectorizable"):
        tvm.ir.register_op_attr("tirx.nearbyint", "TVectorizable", True)
