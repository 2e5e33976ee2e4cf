"""float32 NCHW conv2d rules: direct (KxK, strided, dilated), 1x1, depthwise / grouped. The depthwise
rule also takes the wide int8 depthwise convs that integer_ops sums in float32 (uint8/int8 data)."""
from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, tirx
from tvm.target import Target

from ._common import (
    PREPROC_ATTR,
    NccRule,
    all_blocks,
    buf_of,
    depthwise_channel_loops,
    is_load,
    best_divisor,
    inline_epilogue,
    int_extent,
    is_float32_block,
    iter_kinds,
    lanes,
    num_cores,
    num_vregs,
    split_tile,
)


@dataclass
class ConvInfo:
    block: object  # SBlockRV
    data_idx: int
    weight_idx: int
    K: int
    C: int  # reduction channels (per group)
    KH: int
    KW: int
    OH: int
    OW: int
    grouped: bool  # data channel index depends on the output channel
    stride_w: int = 0  # coefficient of the output column in the input column index (0 = unknown)


def _vars_in(expr):
    import tvm_ffi

    found = []
    tvm_ffi.structural_walk(expr, (tirx.Var, found.append), order="post")
    return found


def _is_mac(store, out_buf):
    """out[...] = out[...] + a * b"""
    if not isinstance(store, tirx.BufferStore) or not store.buffer.same_as(out_buf):
        return None
    v = store.value
    if not isinstance(v, tirx.Add):
        return None
    a, b = v.a, v.b
    if is_load(b) and buf_of(b).same_as(out_buf):
        a, b = b, a
    if not (is_load(a) and buf_of(a).same_as(out_buf)):
        return None
    if not isinstance(b, tirx.Mul):
        return None
    factors = [_integer_widened(f) for f in (b.a, b.b)]
    if not all(is_load(f) for f in factors):
        return None
    return tuple(factors)


def _float_sum_of_integers(block) -> bool:
    """A float32 accumulation of uint8/int8 data and float32 weights."""
    reads = sorted(str(buf_of(r).dtype) for r in block.reads)
    return [str(buf_of(w).dtype) for w in block.writes] == ["float32"] and \
        reads in (["float32", "uint8"], ["float32", "int8"])


def _integer_widened(expr):
    """The load under float32(load of uint8/int8): integer_ops sums a depthwise int8 conv in float32."""
    if isinstance(expr, tirx.Cast) and str(expr.ty) == "float32" and is_load(expr.value) \
            and str(buf_of(expr.value).dtype) in ("uint8", "int8"):
        return expr.value
    return expr


def match_conv2d_nchw(sch: s_tir.Schedule):
    """Find the float32 NCHW conv2d reduction block (SSSSRRR, out[n,f,y,x] += D[n,c',y',x'] * W[f,c,r,s];
    D may be uint8/int8 widened to float32)."""
    for blk in all_blocks(sch):
        stmt = sch.get(blk)
        if iter_kinds(stmt) != "SSSSRRR" or not (is_float32_block(stmt) or _float_sum_of_integers(stmt)):
            continue
        if len(stmt.writes) != 1 or len(stmt.reads) != 2:
            continue
        out_buf = buf_of(stmt.writes[0])
        mac = _is_mac(stmt.body, out_buf)
        if mac is None or len(out_buf.shape) != 4:
            continue
        ivars = [iv.var for iv in stmt.iter_vars]
        n, f, y, x, rc, ry, rx = ivars
        if [str(i) for i in stmt.body.indices] != [str(v) for v in (n, f, y, x)]:
            continue
        w_load = d_load = None
        for ld in mac:
            if len(ld.indices) == 4 and all(isinstance(i, tirx.Var) for i in ld.indices) and [
                i.same_as(v) for i, v in zip(ld.indices, (f, rc, ry, rx))
            ] == [True] * 4:
                w_load = ld
            else:
                d_load = ld
        if w_load is None or d_load is None or len(d_load.indices) != 4:
            continue
        # data index sanity: H uses y & ry, W uses x & rx
        hv = {v.name for v in _vars_in(d_load.indices[2])}
        wv = {v.name for v in _vars_in(d_load.indices[3])}
        if y.name not in hv or x.name not in wv:
            continue
        cv = {v.name for v in _vars_in(d_load.indices[1])}
        if rc.name not in cv:
            continue
        grouped = f.name in cv
        read_bufs = [buf_of(r) for r in stmt.reads]
        try:
            widx = [i for i, b in enumerate(read_bufs) if b.same_as(buf_of(w_load))][0]
            didx = [i for i, b in enumerate(read_bufs) if b.same_as(buf_of(d_load))][0]
        except IndexError:
            continue
        exts = []
        for iv in stmt.iter_vars:
            if not isinstance(iv.dom.extent, tirx.IntImm):
                exts = None
                break
            exts.append(int(iv.dom.extent.value))
        if exts is None:
            continue
        stride_w = 0
        try:
            try:
                from tvm.sym import detect_linear_equation
            except ImportError:  # older TVM
                from tvm.arith import detect_linear_equation

            coef = detect_linear_equation(d_load.indices[3], [x])
            if len(coef) == 2 and isinstance(coef[0], tirx.IntImm):
                stride_w = int(coef[0].value)
        except Exception:
            stride_w = 0
        return ConvInfo(blk, didx, widx, exts[1], exts[4], exts[5], exts[6], exts[2], exts[3], grouped,
                        stride_w)
    return None


def _spatial_tile(OH, OW, budget):
    tw = best_divisor(OW, budget)
    th = best_divisor(OH, max(budget // tw, 1))
    return th, tw


def _repack_weight(sch, blk, widx, block_size):
    """Cache-read the (layout-free) weight and repack it to [K/B, C, KH, KW, B].

    The copy block is annotated as a layout-rewrite preproc so that
    relax.transform.SplitLayoutRewritePreproc + FoldConstant move it to compile time.
    """
    wb = sch.cache_read(blk, widx, "global")
    sch.annotate(wb, PREPROC_ATTR, True)
    B = block_size
    sch.transform_layout(blk, ("read", widx), lambda f, c, r, s: (f // B, c, r, s, f % B))
    return wb


def _vectorize_if_serial(sch, loop):
    if sch.get(loop).kind == tirx.ForKind.SERIAL:
        sch.vectorize(loop)


def _producer_names(sch, conv_blk):
    return [sch.get(b).name_hint for b in sch.get_producers(conv_blk)]


def _is_plain_copy(sch, name) -> bool:
    """A producer that copies its input unchanged (a 1x1 conv's zero "padding")."""
    stmt = sch.get(sch.get_sblock(name))
    if len(stmt.reads) != 1 or len(stmt.writes) != 1 or not is_load(stmt.body.value):
        return False
    return [int(d) for d in buf_of(stmt.reads[0]).shape] == [int(d) for d in buf_of(stmt.writes[0]).shape]


def _place_input_copy(sch, pad_names, target):
    """The input copy of a 1x1 conv: inlined with 32 vector registers (AVX-512, Zen 4: MobileNetV2's
    1x1 convs 1.1x faster at one thread, 1.6-7x at two, where the copy was the slow part). With
    16 (AVX2, Zen 3) it is kept for its planes (_offset_aliasing_planes), its rows vectorized.
    Returns the producers left to schedule as stages."""
    if len(pad_names) != 1 or not _is_plain_copy(sch, pad_names[0]):
        return pad_names
    if num_vregs(target) > 16:
        sch.compute_inline(sch.get_sblock(pad_names[0]))
        return []
    _offset_aliasing_planes(sch, pad_names)
    return pad_names


def _offset_aliasing_planes(sch, pad_names):
    """Channel planes of the padded input a multiple of 4 KB apart (32 x 32 float32 maps) all map
    to the same L1 sets, so a kernel reading one pixel of every channel misses on each: the
    planes are spaced 16 elements further apart (ResNet-50's and MobileNetV2's 1x1 convs at 32 x 32
    1.2-1.4x faster, Zen 3)."""
    if len(pad_names) != 1:
        return
    block = sch.get_sblock(pad_names[0])
    buf = buf_of(sch.get(block).writes[0])
    if len(buf.shape) != 4:
        return
    plane = int(buf.shape[2]) * int(buf.shape[3])
    if plane * buf.dtype.bits // 8 % 4096 == 0:
        sch.storage_align(block, 0, 1, plane, 16)


def _schedule_pad(sch, names, target):
    """Keep the padding producer as its own (parallel) stage."""
    from ._common import schedule_pad_block

    for nm in names:
        schedule_pad_block(sch, sch.get_sblock(nm), target)
        if _is_plain_copy(sch, nm):  # (a scalar copy was 3x slower at two threads than at one)
            sch.vectorize(sch.get_loops(sch.get_sblock(nm))[-1])


def _choose_ocvec(K, OH, OW, V, regs, spatial_budget=None, wblock_bytes=None, cores=1):
    """Pick (B output channels per vector block, tile rows, tile cols) for the oc-vector kernel."""
    A = regs - 4
    cands = []
    for b in (4 * V, 2 * V, V, V // 2, V // 4):  # non power-of-two vector blocks legalize badly in LLVM
        if b >= 2 and b <= 4 * V and K % b == 0 and b not in cands:
            cands.append(b)
    cands = [b for b in cands if b >= min(4, V)]
    if not cands:
        return None
    util = lambda b: b / (((b + V - 1) // V) * V)
    best_util = max(util(b) for b in cands)
    cands = [b for b in cands if util(b) == best_util]
    # score = FMAs per load in the micro-kernel (nvec weight vectors + th*tw broadcasts per step)
    best = None
    for B in cands:
        nvec = (B + V - 1) // V
        if wblock_bytes is not None and B > cands[-1] and wblock_bytes * B > (512 << 10):
            continue  # keep the per-block weight panel L2 resident
        for tw in range(1, OW + 1):
            if OW % tw:
                continue
            for th in range(1, OH + 1):
                if OH % th or nvec * th * tw > A:
                    continue
                acc = nvec * th * tw
                par_ok = (K // B) * (OH // th) >= min(cores, K // cands[-1] * OH)
                score = (par_ok, acc / (nvec + th * tw), acc, tw)
                if best is None or score > best[0]:
                    best = (score, B, th, tw)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _choose_xvec(K, OH, OW, V, regs, cores=1):
    """(r output channels, tile rows, vectors per row) for the width-vector + oc-block kernel."""
    A = regs - 4
    best = None
    for nvx in (1, 2):
        if OW % (nvx * V):
            continue
        for r in range(1, 17):
            if K % r:
                continue
            for th in range(1, OH + 1):
                if OH % th or r * nvx * th > A:
                    continue
                acc = r * nvx * th
                par_ok = (K // r) * (OH // th) >= cores
                score = (par_ok, acc / (r + nvx * th), acc)
                if best is None or score > best[0]:
                    best = (score, r, th, nvx)
    if best is None:
        return None
    return best[1], best[2], best[3] * V


def schedule_conv_xvec(sch, info: ConvInfo, target: Target, tunable=False):
    """Width-vectorized direct conv with output-channel register blocking (stride 1, OW % lanes == 0).

    micro-kernel: for rc, ry, rx: for f in r: w = bcast(W[fo, rc, ry, rx, f]); for yi: acc[f, yi, :] += D[rc, y+ry, x+rx : +tw] * w
    The accumulator tile is in NCHW order so the fused epilogue stores contiguous vectors.
    """
    V = lanes(target)
    if info.stride_w != 1 or info.OW % V != 0:
        return False
    ch = _choose_xvec(info.K, info.OH, info.OW, V, num_vregs(target), num_cores(target))
    if ch is None:
        return False
    r, th, tw = ch
    blk = info.block
    pads = _place_input_copy(sch, _producer_names(sch, blk), target)
    blocks = all_blocks(sch)
    epi = inline_epilogue(sch, blk, blocks)
    _repack_weight(sch, blk, info.weight_idx, r)
    if epi is None:
        epi = sch.cache_write(blk, 0, "local")
    else:
        sch.set_scope(blk, 0, "local")
    n, f, y, x, rc, ry, rx = sch.get_loops(blk)
    fo, fi = sch.split(f, [None, r])
    yo, yi = split_tile(sch, y, th, tunable)
    xo, xi = sch.split(x, [None, tw])
    sch.reorder(n, fo, yo, xo, rc, ry, rx, fi, yi, xi)
    par = sch.fuse(n, fo, yo)
    sch.parallel(par)
    sch.reverse_compute_at(epi, xo, preserve_unit_loops=True)
    sch.vectorize(xi)
    sch.unroll(yi)
    sch.unroll(fi)
    if info.KW * info.KH <= 9:
        sch.unroll(rx)
    init = sch.decompose_reduction(blk, rc)
    _vectorize_if_serial(sch, sch.get_loops(init)[-1])
    _vectorize_if_serial(sch, sch.get_loops(epi)[-1])
    _schedule_pad(sch, pads, target)
    return True


def schedule_conv1x1_flat(sch, info: ConvInfo, target: Target):
    """1x1 stride-1 conv with OW not a multiple of the lanes but OH*OW is: treat it as a GEMM over the
    flattened plane p = y*OW + x (the input copy and the accumulator are re-laid out as [n, c, p]) and run the
    x-vector kernel along p."""
    V = lanes(target)
    P = info.OH * info.OW
    if info.KH * info.KW != 1 or info.stride_w != 1 or info.OW % V == 0 or P % V != 0:
        return False
    pads = _producer_names(sch, info.block)
    if len(pads) != 1:
        return False
    pstmt = sch.get(sch.get_sblock(pads[0]))
    if len(pstmt.writes) != 1 or [int(e) for e in buf_of(pstmt.writes[0]).shape][2:] != [info.OH, info.OW]:
        return False
    ch = _choose_xvec(info.K, 1, P, V, num_vregs(target), num_cores(target))
    if ch is None:
        return False
    r, _, tw = ch
    OW = info.OW
    if tw % OW != 0:  # a tile must cover whole output rows (static epilogue extents)
        if (2 * V) % OW == 0 and P % (2 * V) == 0:
            tw = 2 * V
            r = max(d for d in range(1, 9) if info.K % d == 0)
        else:
            return False
    blk = info.block
    blocks = all_blocks(sch)
    epi = inline_epilogue(sch, blk, blocks)
    _repack_weight(sch, blk, info.weight_idx, r)
    sch.transform_layout(blk, ("read", info.data_idx), lambda n, c, h, w: (n, c, h * OW + w))
    if epi is None:
        epi = sch.cache_write(blk, 0, "local")
    else:
        sch.set_scope(blk, 0, "local")
    sch.transform_layout(blk, ("write", 0), lambda n, f, y, x: (n, f, y * OW + x))
    n, f, y, x, rc, ry, rx = sch.get_loops(blk)
    pl = sch.fuse(y, x)
    fo, fi = sch.split(f, [None, r])
    po, pi = sch.split(pl, [None, tw])
    sch.reorder(n, fo, po, rc, ry, rx, fi, pi)
    par = sch.fuse(n, fo)
    sch.parallel(par)
    sch.reverse_compute_at(epi, po, preserve_unit_loops=True)
    sch.vectorize(pi)
    sch.unroll(fi)
    init = sch.decompose_reduction(blk, rc)
    _vectorize_if_serial(sch, sch.get_loops(init)[-1])
    el = sch.get_loops(epi)
    sch.vectorize(sch.fuse(el[-2], el[-1]))
    _schedule_pad(sch, pads, target)
    return True


def schedule_conv_ocvec(sch, info: ConvInfo, target: Target, spatial_budget=None, tunable=False):
    """Output-channel-vectorized direct conv (weights repacked to OIHW{B}o).

    micro-kernel: for rc, ry, rx: w = W[fo, rc, ry, rx, 0:B]; for (yi, xi) in tile: acc[yi, xi, :] += D[..] * w
    """
    V = lanes(target)
    regs = num_vregs(target)
    choice = _choose_ocvec(info.K, info.OH, info.OW, V, regs, spatial_budget, info.C * info.KH * info.KW * 4,
                           num_cores(target))
    if choice is None:
        return False
    B, th, tw = choice
    blk = info.block
    pads = _place_input_copy(sch, _producer_names(sch, blk), target)
    blocks = all_blocks(sch)
    epi = inline_epilogue(sch, blk, blocks)
    _repack_weight(sch, blk, info.weight_idx, B)
    # accumulator layout NHWC so the vector (f) axis is contiguous in the local tile
    if epi is None:
        epi = sch.cache_write(blk, 0, "local")
    else:
        sch.set_scope(blk, 0, "local")
    sch.transform_layout(blk, ("write", 0), lambda n, f, y, x: (n, y, x, f))
    n, f, y, x, rc, ry, rx = sch.get_loops(blk)
    fo, fi = sch.split(f, [None, B])
    yo, yi = split_tile(sch, y, th, tunable)
    xo, xi = split_tile(sch, x, tw, tunable)
    sch.reorder(n, fo, yo, xo, rc, ry, rx, yi, xi, fi)
    par = sch.fuse(n, fo, yo)
    sch.parallel(par)
    sch.reverse_compute_at(epi, xo, preserve_unit_loops=True)
    sch.vectorize(fi)
    sch.unroll(xi)
    sch.unroll(yi)
    if info.KW * info.KH <= 9:
        sch.unroll(rx)
    init = sch.decompose_reduction(blk, rc)
    _vectorize_if_serial(sch, sch.get_loops(init)[-1])
    eloops = sch.get_loops(epi)
    inner = eloops[-4:]
    # epilogue (NCHW output): vectorize along the output columns; the accumulator tile is read
    # with a stride, which is far cheaper than scattering an output-channel vector (measured 10x).
    sch.vectorize(inner[3])
    _schedule_pad(sch, pads, target)
    return True


def _split_columns_by_parity(sch, blk, data_idx, padded):
    """The padded input's even and odd columns apart, so that a stride-2 output row reads contiguous vectors."""
    odd = int(padded.shape[3]) % 2
    sch.transform_layout(blk, ("read", data_idx), lambda b, c, h, w: (b, c, h, w % 2, w // 2),
                         pad_value=tirx.const(0, str(padded.dtype)) if odd else None)


def schedule_conv_wvec(sch, info: ConvInfo, target: Target, tunable=False):
    """Width-vectorized direct conv (used for depthwise and odd channel counts)."""
    V = lanes(target)
    regs = num_vregs(target)
    if info.OW >= V:
        tw = best_divisor(info.OW, 2 * V)
        if tw < V // 2:
            tw = best_divisor(info.OW, 4 * V)
    else:
        tw = info.OW
    nv = max((tw + V - 1) // V, 1)
    th = best_divisor(info.OH, max((regs - 6) // nv, 1))
    th = min(th, best_divisor(info.OH, 8))
    blk = info.block
    blocks = all_blocks(sch)
    pads = _producer_names(sch, blk)
    padded = sch.get(sch.get_sblock(pads[0])).writes[0].source if len(pads) == 1 else None
    if info.stride_w == 2 and padded is not None and len(padded.shape) == 4:
        _split_columns_by_parity(sch, blk, info.data_idx, padded)
    epi = inline_epilogue(sch, blk, blocks)
    if epi is None:
        epi = sch.cache_write(blk, 0, "local")
    else:
        sch.set_scope(blk, 0, "local")
    n, f, y, x, rc, ry, rx = sch.get_loops(blk)
    yo, yi = split_tile(sch, y, th, tunable)
    xo, xi = sch.split(x, [None, tw])
    sch.reorder(n, f, yo, xo, rc, ry, rx, yi, xi)
    par = sch.fuse(n, f)
    sch.parallel(par)
    sch.reverse_compute_at(epi, xo, preserve_unit_loops=True)
    sch.vectorize(xi)
    sch.unroll(yi)
    if info.KW * info.KH <= 9:
        sch.unroll(rx)
        sch.unroll(ry)
    init = sch.decompose_reduction(blk, rc)
    _vectorize_if_serial(sch, sch.get_loops(init)[-1])
    sch.vectorize(sch.get_loops(epi)[-1])
    if info.grouped and padded is not None and info.C == 1 and int(padded.shape[1]) == info.K:
        # depthwise: pad each channel where it is used (L1-resident), its rows in vectors of at
        # most 8 (a stride-2 depthwise layer 4x faster, Xeon AVX-512)
        pad = sch.get_sblock(pads[0])
        sch.compute_at(pad, par)
        _outer, inner = sch.split(sch.get_loops(pad)[-1], [None, min(8, V)])
        sch.vectorize(inner)
    else:
        _schedule_pad(sch, pads, target)
    return True


DW_CHANNELS_MAX_WIDTH = 16  # depthwise maps narrower than this put channels in the lanes


def schedule_depthwise_channels(sch, info: ConvInfo, target: Target):
    """Depthwise conv on a small map (MobileNetV2's 8x8 and 4x4): channels in
    the lanes, as the int8 rule's small-map form. The padded input is written
    NCHW{V}c and the weights prepacked likewise, so each tap of the window is
    one contiguous vector per output pixel; a block of V channels accumulates
    its whole map locally and the epilogue writes it back as NCHW. (Rows in the
    lanes leave 4 or 8 of 16 lanes busy on such maps.)"""
    V = lanes(target)
    blk = info.block
    stmt = sch.get(blk)
    data = buf_of(stmt.reads[info.data_idx])
    if not (info.grouped and info.C == 1 and int(data.shape[1]) == info.K) or info.OW >= DW_CHANNELS_MAX_WIDTH \
            or info.K % V or info.KH * info.KW > 25:
        return False
    blocks = all_blocks(sch)
    pads = _producer_names(sch, blk)
    pad = sch.get_sblock(pads[0]) if len(pads) == 1 else sch.cache_read(blk, info.data_idx, "global")
    epi = inline_epilogue(sch, blk, blocks)
    if epi is None:
        epi = sch.cache_write(blk, 0, "local")
    else:
        sch.set_scope(blk, 0, "local")
    blocked = lambda b, c, h, w: (b, c // V, h, w, c % V)  # noqa: E731
    sch.transform_layout(blk, ("read", info.data_idx), blocked)
    sch.transform_block_layout(pad, blocked)  # stores in the blocked order
    sch.parallel(sch.fuse(*sch.get_loops(pad)[:2]))
    _repack_weight(sch, blk, info.weight_idx, V)
    sch.transform_layout(blk, ("write", 0), blocked)
    depthwise_channel_loops(sch, blk, epi, V)
    return True


class Conv2dNCHWDirect(NccRule):
    """Dense (groups=1) float32 NCHW conv2d with a KxK (K>1) window."""

    name = "conv2d-nchw-direct"

    def _accept(self, info: ConvInfo) -> bool:
        return (not info.grouped) and info.KH * info.KW > 1

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        info = match_conv2d_nchw(sch)
        if info is None or not self._accept(info):
            return None
        # x-vector kernel (stride 1, OW % lanes == 0), else oc-vector kernel, else width-vector
        ok = (
            schedule_conv_xvec(sch, info, target, tunable)
            or schedule_conv_ocvec(sch, info, target, tunable=tunable)
            or schedule_conv_wvec(sch, info, target, tunable)
        )
        return sch if ok else None


class Conv2dNCHW1x1(Conv2dNCHWDirect):
    name = "conv2d-nchw-1x1"

    def _accept(self, info):
        return (not info.grouped) and info.KH * info.KW == 1

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        info = match_conv2d_nchw(sch)
        if info is None or not self._accept(info):
            return None
        try:
            if schedule_conv1x1_flat(sch, info, target):
                return sch
        except Exception:  # pylint: disable=broad-except
            pass
        # With 16 vector registers (AVX2) the x-vector kernel's tile is too small for a 1x1 conv:
        # output channels in the lanes ran 1.2-1.75x faster on 8x8 and 16x16 maps (Zen 3)
        if num_vregs(target) <= 16 and schedule_conv_ocvec(sch, info, target, tunable=tunable):
            return sch
        return super().apply(func, target, tunable)


class Conv2dNCHWGrouped(NccRule):
    """Depthwise and grouped float32 NCHW conv2d."""

    name = "conv2d-nchw-depthwise-grouped"

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        info = match_conv2d_nchw(sch)
        if info is None or not info.grouped:
            return None
        channels = sch.copy()  # (a loop nest without tile sizes to sample, tunable or not)
        try:
            if schedule_depthwise_channels(channels, info, target):
                return channels
        except Exception:  # pylint: disable=broad-except
            pass
        ok = schedule_conv_wvec(sch, info, target, tunable)
        return sch if ok else None
