"""Default (untuned) schedule for the integer conv2d kernels of ncc's int8 path:
uint8/int8 activations x int8 weights -> int32, fused with the zero-point
correction, rescale, bias, Relu, requantize (and a residual add).

Layout: the output channels are blocked by VO (the accumulator is
N, OC/VO, OH, OW, VO, a small local tile), the constant weights are prepacked
at compile time into OIHW{VO}o{R}i (a layout_rewrite_preproc block that
SplitLayoutRewritePreproc + FoldConstant turn into a new constant), and the
activations are blocked by R input channels (R = 4 for VNNI).

- x86 with AVX512-VNNI and uint8 activations: VO=16, R=4, the inner
  16o x 4i product is tensorized with vpdpbusd (TVM's dot_16x4_vnni).
- x86 with AVX2 and 8-lane vectors, no VNNI (uint8 or int8 activations):
  VO=8, R=2, the inner 8o x 2i product is tensorized with vpmaddwd on the
  pair widened to int16 (exact), twice the products per instruction of
  LLVM's own widening below.
- otherwise (AVX-512 without VNNI, NEON, int8 activations under VNNI):
  VO = lanes, R = 1, the inner 16o loop vectorized; LLVM emits the widening
  multiply-accumulate (vpmaddwd with one product per lane on x86, smlal/smull
  on aarch64).
- depthwise: on maps narrower than 16, channels blocked by VO in data,
  weights and accumulator, the channel lanes vectorized; otherwise rows in the
  lanes. (integer_ops sums wider depthwise convs in float32; the float
  depthwise rule schedules those.)
- other grouped convs and unmatched shapes: None (left to other rules).
"""

from tvm import s_tir

from ..integer_ops import FLOAT_SUM_MIN_WIDTH
from ._common import depthwise_channel_loops, split_tile
from .int8_common import (PREPROC, Isa, buffer_of, inline_elementwise, is_int_mac, largest_divisor,
                          layout_free, param_index)

try:
    from tvm.s_tir.dlight.base import ScheduleRule
except ImportError:  # pragma: no cover
    ScheduleRule = object

CONV_BLOCKS = ("conv2d_nchw", "group_conv2d_nchw", "depthwise_conv2d_nchw")


STRATEGY_ATTR = "ncc.int8_strategy"


def _tag(sch, name):
    """Record the strategy on the PrimFunc (root block annotation) for reports."""
    sch.annotate(sch.get_sblock("root"), STRATEGY_ATTR, name)


def _extent(iv):
    return int(iv.dom.extent)


class Conv2dInt8(ScheduleRule):
    """Integer NCHW conv2d (direct, 1x1, depthwise) with its fused epilogue."""

    name = "conv2d-int8"

    def __init__(self, use_vnni=True, max_regs=None, vector_epilogue=True, pixel_vnni=True,
                 block_copy_vec=False, pixel_min=8, flatten=True,
                 dw_x=None, dw_pixels=None, dw_rows=4, flatten_all=True, pixel_max_ic=16,
                 dw_channel_max_width=FLOAT_SUM_MIN_WIDTH, use_pmaddwd=True):
        self.use_pmaddwd = use_pmaddwd
        self.use_vnni = use_vnni
        self.pixel_vnni = pixel_vnni
        self.block_copy_vec = block_copy_vec
        self.pixel_min = pixel_min
        self.pixel_max_ic = pixel_max_ic
        self.flatten = flatten
        self.flatten_all = flatten_all
        self.dw_x, self.dw_pixels, self.dw_rows = dw_x, dw_pixels, dw_rows
        self.dw_channel_max_width = dw_channel_max_width
        self.vector_epilogue = vector_epilogue
        self.max_regs = max_regs

    def apply(self, func, target, tunable=False):
        if target.kind.name != "llvm":
            return None
        try:
            sch = s_tir.Schedule(func)
            root = sch.get_sblock("root")
            blocks = sch.get_child_blocks(root)
        except Exception:  # pylint: disable=broad-except
            return None
        convs = [b for b in blocks if sch.get(b).name_hint in CONV_BLOCKS]
        if len(convs) != 1:
            return None
        conv = convs[0]
        stmt = sch.get(conv)
        loads = is_int_mac(stmt)
        if loads is None or len(stmt.iter_vars) != 7:
            return None
        kinds = "".join("S" if int(iv.iter_type) == 0 else "R" for iv in stmt.iter_vars)
        if kinds != "SSSSRRR":
            return None
        data_buf, weight_buf = buffer_of(loads[0]), buffer_of(loads[1])
        w_index = param_index(func, weight_buf)
        if w_index is None or w_index not in layout_free(func) or str(weight_buf.dtype) != "int8":
            return None
        n, oc, oh, ow, icg, kh, kw = (_extent(iv) for iv in stmt.iter_vars)
        in_channels = int(data_buf.shape[1])
        groups = in_channels // icg
        isa = Isa(target)
        conv_name = stmt.name_hint
        if groups == 1:
            shape = (n, oc, oh, ow, icg, kh, kw)
            strategies = [lambda s, c: self._dense(s, c, data_buf, isa, shape, tunable),
                          lambda s, c: self._dense(s, c, data_buf, isa, shape, tunable, allow_pixels=False)]
        elif icg == 1 and groups == oc:
            shape = (n, oc, oh, ow, kh, kw)
            strategies = [lambda s, c: self._depthwise_channels(s, c, data_buf, isa, shape),
                          lambda s, c: self._depthwise(s, func, c, data_buf, isa, shape)]
        else:
            return None
        # each strategy on a fresh schedule: a failed one leaves nothing behind
        for strategy in strategies:
            try:
                sch = s_tir.Schedule(func)
                result = strategy(sch, sch.get_sblock(conv_name))
            except Exception:  # pylint: disable=broad-except
                result = None
            if result is not None:
                return result
        return None

    # -- pieces --------------------------------------------------------------
    def _prologue_epilogue(self, sch, conv, data_buf):
        root = sch.get_sblock("root")
        pad = None
        for block in sch.get_producers(conv):
            stmt = sch.get(block)
            if stmt.writes[0].source.same_as(data_buf):
                pad = block
        keep = [conv] + ([pad] if pad is not None else [])
        if not inline_elementwise(sch, keep):
            raise ValueError("epilogue not inlinable")
        outputs = sch.get_output_blocks(root)
        if len(outputs) != 1:
            raise ValueError("more than one output")
        epilogue = outputs[0]
        if sch.get(epilogue).name_hint == sch.get(conv).name_hint:
            # the int32 accumulator is the output: accumulate locally, then copy
            epilogue = sch.cache_write(conv, 0, "local")
        return pad, epilogue

    def _pack_weight(self, sch, conv, index_map):
        """Prepack the constant weights; channels past the blocked extent are zeros,
        so a padded reduction or output block adds nothing."""
        cached = sch.cache_read(conv, 1, "global")
        sch.annotate(cached, PREPROC, True)
        sch.transform_layout(conv, ("read", 1), index_map, pad_value=0)

    def _block_data(self, sch, conv, pad, index_map):
        """Activations in the blocked layout: the pad block writes it, else a copy
        (padded channels hold 0 and meet zero weights)."""
        if pad is None:
            pad = sch.cache_read(conv, 0, "global")
        sch.transform_layout(conv, ("read", 0), index_map, pad_value=0)
        try:
            # iterate in the blocked (destination) order: contiguous stores
            sch.transform_block_layout(pad, index_map)
        except Exception:  # pylint: disable=broad-except
            pass
        loops = sch.get_loops(pad)
        sch.parallel(sch.fuse(*loops[:2]))
        if self.block_copy_vec and len(loops) >= 5:
            sch.vectorize(sch.fuse(loops[-2], loops[-1]))
        return pad

    def _finish(self, sch, conv, epilogue, tile_loop, par_loops, init_at, inner, isa, intrin):
        if epilogue is not None:
            sch.set_scope(conv, 0, "local")
            sch.reverse_compute_at(epilogue, tile_loop, preserve_unit_loops=True)
            eloops = sch.get_loops(epilogue)
            # the epilogue loops under tile_loop: vectorize the innermost if it is > 1
            last = eloops[-1]
            if self.vector_epilogue:
                sch.vectorize(last)
            else:
                sch.unroll(last)
        fused = sch.fuse(*par_loops)
        sch.parallel(fused)
        if intrin is None:
            sch.vectorize(inner)
        init = sch.decompose_reduction(conv, init_at)
        sch.vectorize(sch.get_loops(init)[-1])
        if intrin is not None:
            sch.tensorize(inner, intrin)

    def _tiles(self, isa, oc_blocks, ow, vregs_per_acc, pairs=False):
        budget = self.max_regs or (24 if isa.avx512 or isa.arm else 8 if pairs else 12)
        # vpmaddwd's tile (Zen 3, against 8 pixels x 1 channel vector, 1.1-1.8x faster): on maps
        # narrower than 32, 2 pixels x 4 channel vectors, each broadcast pair feeding four
        # products (MobileNetV2's 1x1s at 8 x 8 and 4 x 4 10-30% faster than 4 x 2); at 32 and
        # wider 4 x 2 (2 x 4 1.7x slower there); widths 2 does not divide keep a row of up to 8
        xt = largest_divisor(ow, 4 if ow >= 32 else 2) if pairs else 1
        if xt == 1:
            xt = largest_divisor(ow, 8)
        fb = largest_divisor(oc_blocks, max(1, min(4, budget // (xt * vregs_per_acc))))
        return xt, fb

    def _dense(self, sch, conv, data_buf, isa, shape, tunable, allow_pixels=True):
        n, oc, oh, ow, ic, kh, kw = shape
        uint8 = str(data_buf.dtype) == "uint8"
        stride1 = int(data_buf.shape[2]) == oh + kh - 1 and int(data_buf.shape[3]) == ow + kw - 1
        pointwise = kh == 1 and kw == 1 and stride1
        pixels = oh * ow if pointwise else ow
        # (integer_ops pads output channels to a multiple of 4 or 8, from 4 channels up)
        vnni = self.use_vnni and isa.vnni512 and uint8 and oc % 8 == 0
        # Pixels in the lanes pay for 1x1 convs and thin layers of whole 4-channel groups; a KxK
        # conv of more input channels ran 1.1-2.7x faster with output channels in the lanes
        # (Xeon, Emerald Rapids: 256 channels at 8x8 0.15 ms against 0.40)
        pixels_pay = pointwise or ic <= self.pixel_max_ic or not vnni
        if (allow_pixels and self.use_vnni and self.pixel_vnni and isa.vnni512 and uint8 and stride1
                and pixels_pay and ic % 4 == 0 and pixels % self.pixel_min == 0):
            return self._dense_pixels(sch, conv, data_buf, shape, tunable,
                                      flatten=pointwise and self.flatten and (self.flatten_all or ow % 16 != 0))
        if vnni:
            from .int8_intrin import VNNI8_LOCAL, VNNI_LOCAL
            vo, r = (16, 4) if oc % 16 == 0 else (8, 4)
            intrin, strategy = VNNI_LOCAL if vo == 16 else VNNI8_LOCAL, "vnni_channels"
        elif self.use_pmaddwd and isa.avx2 and not isa.avx512 and oc % 8 == 0:
            from .int8_intrin import PMADDWD
            vo, r = 8, 2
            intrin, strategy = PMADDWD[str(data_buf.dtype)], "pmaddwd_channels"
        else:
            intrin, strategy = None, "widening_channels"
            r = 1
            lanes = (isa.i32_lanes * 2 if isa.arm else isa.i32_lanes, isa.i32_lanes, 8, 4)
            vo = next((cand for cand in lanes if oc % cand == 0), None)
            if vo is None:
                return None
        pad, epilogue = self._prologue_epilogue(sch, conv, data_buf)
        self._pack_weight(sch, conv, lambda o, i, h, w: (o // vo, i // r, h, w, o % vo, i % r))
        if r > 1:
            self._block_data(sch, conv, pad, lambda b, c, h, w: (b, c // r, h, w, c % r))
        elif pad is not None:
            sch.parallel(sch.fuse(*sch.get_loops(pad)[:2]))
        sch.transform_layout(conv, ("write", 0), lambda b, f, y, x: (b, f // vo, y, x, f % vo))
        xt, fb = self._tiles(isa, oc // vo, ow, max(1, vo // isa.i32_lanes), pairs=r == 2)
        ln, lf, ly, lx, lrc, lry, lrx = sch.get_loops(conv)
        blocks, fi = sch.split(lf, [None, vo])
        fo, fbi = split_tile(sch, blocks, fb, tunable, max_inner=4)
        xo, xi = split_tile(sch, lx, xt, tunable)
        if r > 1:
            rco, rci = sch.split(lrc, [None, r], disable_predication=True)
            sch.reorder(ln, fo, ly, xo, rco, lry, lrx, xi, fbi, fi, rci)
        else:
            rco = lrc
            sch.reorder(ln, fo, ly, xo, rco, lry, lrx, xi, fbi, fi)
        sch.unroll(xi)
        sch.unroll(fbi)
        self._finish(sch, conv, epilogue, xo, [ln, fo, ly], rco, fi, isa, intrin)
        _tag(sch, strategy)
        return sch

    def _dense_pixels(self, sch, conv, data_buf, shape, tunable, flatten=False):
        """VNNI with the output pixels as vector lanes (stride 1, OW % 8 == 0):
        acc[f, y, x:x+16] += data4c[c/4, y+ry, x+rx : +16, 0:4] . w[f, c/4, ry, rx, 0:4]
        (one vpdpbusd with the 4 weight bytes broadcast). The accumulator tile
        is in the output's own NCHW order, so the epilogue reads and stores
        whole rows; activations are blocked NCHW4c, weights OIHW4i."""
        from .int8_intrin import VNNI_XVEC

        n, oc, oh, ow, ic, kh, kw = shape
        pad, epilogue = self._prologue_epilogue(sch, conv, data_buf)
        # (a 1x1 stride-1 conv reads an unpadded image: a pad block there is a copy)
        width = oh * ow if flatten else ow
        xv = 16 if width % 16 == 0 else 8
        intrin = VNNI_XVEC[xv]
        self._pack_weight(sch, conv, lambda o, i, h, w: (o, i // 4, h, w, i % 4))
        if flatten:  # 1x1 stride 1: the pixels of the whole image are one row
            self._block_data(sch, conv, pad, lambda b, c, h, w: (b, c // 4, h * ow + w, c % 4))
            sch.transform_layout(conv, ("write", 0), lambda b, f, y, x: (b, f, y * ow + x))
        else:
            self._block_data(sch, conv, pad, lambda b, c, h, w: (b, c // 4, h, w, c % 4))
        vregs = 1
        xt = largest_divisor(width // xv, 2)
        budget = self.max_regs or 24
        fb = largest_divisor(oc, max(1, min(8, budget // (xt * vregs))))
        if flatten:
            # one block iterator over the pixels, so the 16-pixel vector is one axis
            sch.transform_block_layout(conv, lambda b, f, y, x, c, r, s: (b, f, y * ow + x, c, r, s))
            ln, lf, lx, lrc, lry, lrx = sch.get_loops(conv)
            ly = None
        else:
            ln, lf, ly, lx, lrc, lry, lrx = sch.get_loops(conv)
        fo, fi = split_tile(sch, lf, fb, tunable, max_inner=8)
        xo, xt_l, xi = sch.split(lx, [None, xt, xv])
        rco, rci = sch.split(lrc, [None, 4], disable_predication=True)
        outer = [ln, fo] + ([ly] if ly is not None else [])
        sch.reorder(*outer, xo, rco, lry, lrx, fi, xt_l, xi, rci)
        sch.unroll(fi)
        sch.unroll(xt_l)
        if epilogue is not None:
            sch.set_scope(conv, 0, "local")
            sch.reverse_compute_at(epilogue, xo, preserve_unit_loops=True)
            sch.vectorize(sch.get_loops(epilogue)[-1])
        sch.parallel(sch.fuse(*outer))
        init = sch.decompose_reduction(conv, rco)
        sch.vectorize(sch.get_loops(init)[-1])
        sch.tensorize(xi, intrin)
        _tag(sch, "vnni_pixels_flat" if flatten else "vnni_pixels")
        return sch

    def _depthwise_channels(self, sch, conv, data_buf, isa, shape):
        """Small maps (MobileNetV2's 8x8 and 4x4): channels in the lanes. The
        (padded) input is copied to NCHW{lanes}c and the weights prepacked
        likewise, so each of the window's taps is one contiguous vector load per
        output pixel; a block of channels accumulates its whole map locally and
        the epilogue writes it back as NCHW."""
        n, oc, oh, ow, kh, kw = shape
        lanes = isa.i32_lanes
        if ow >= self.dw_channel_max_width or oc % lanes:
            return None
        pad, epilogue = self._prologue_epilogue(sch, conv, data_buf)
        self._block_data(sch, conv, pad, lambda b, c, h, w: (b, c // lanes, h, w, c % lanes))
        self._pack_weight(sch, conv, lambda o, i, h, w: (o // lanes, i, h, w, o % lanes))
        sch.set_scope(conv, 0, "local")
        sch.transform_layout(conv, ("write", 0), lambda b, f, y, x: (b, f // lanes, y, x, f % lanes))
        depthwise_channel_loops(sch, conv, epilogue, lanes)
        _tag(sch, "depthwise_channels")
        return sch

    def _depthwise(self, sch, func, conv, data_buf, isa, shape):
        """NCHW kept: the output row is vectorized (weights broadcast), so no
        activation transpose is needed and the epilogue stores whole rows."""
        n, oc, oh, ow, kh, kw = shape
        pad, epilogue = self._prologue_epilogue(sch, conv, data_buf)
        if pad is not None:
            ploops = sch.get_loops(pad)
            sch.parallel(sch.fuse(*ploops[:2]))
            sch.vectorize(ploops[-1])
        lanes = isa.i32_lanes
        xmax = self.dw_x or 2 * lanes
        xv = ow if ow <= xmax else largest_divisor(ow, xmax)
        yt = largest_divisor(oh, max(1, (self.dw_pixels or 4 * lanes) // max(xv, 1)))
        yt = min(yt, self.dw_rows)
        ln, lf, ly, lx, lrc, lry, lrx = sch.get_loops(conv)
        yo, yi = sch.split(ly, [None, yt])
        xo, xi = sch.split(lx, [None, xv])
        sch.reorder(ln, lf, yo, xo, lrc, lry, lrx, yi, xi)
        sch.unroll(yi)
        sch.vectorize(xi)
        if epilogue is not None:
            sch.set_scope(conv, 0, "local")
            sch.reverse_compute_at(epilogue, xo)
            sch.vectorize(sch.get_loops(epilogue)[-1])
        sch.parallel(sch.fuse(ln, lf, yo))
        init = sch.decompose_reduction(conv, lrc)
        sch.vectorize(sch.get_loops(init)[-1])
        _tag(sch, "depthwise_rows")
        return sch
