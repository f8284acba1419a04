"""Numba kernels for convolution and pooling: im2col/col2im, the layout change after the matrix product, pooling.

Conventions shared by every kernel:

- arrays are C-contiguous and of one floating dtype (float32 or float64); the callers (``conv``, ``pooling``)
  guarantee it, so each kernel compiles once per dtype and float32 stays float32;
- 1-D layers are the 2-D kernels with height 1 (H = kernel height = 1), so there is one implementation;
- the column matrix is (C·kH·kW, N·Ho·Wo): row k = (c, i, j) of the filter, column (n, oh, ow) of the output.
  Its rows are contiguous along ow, so for stride 1 im2col and col2im copy contiguous runs, and the
  convolution is one BLAS product W(O, K) @ cols(K, N·P) for the whole batch;
- out-of-range (zero-padding) positions are never read: each row computes the range of output columns
  whose input position lies inside the image, so the input is never padded (copied) first;
- the kernels are serial (no ``parallel=True``): with threaded BLAS calls in between, Numba's OpenMP
  workers and OpenBLAS's workers spin-wait against each other on a small machine (many times slower);
  serial kernels were as fast as parallel ones with OMP_WAIT_POLICY=passive, and need no global setting.

This module imports numba (slow to import), so ``conv`` and ``pooling`` load it lazily on first use.
"""
import numpy as np
from numba import njit

# Every kernel uses error_model="numpy": Python's zero-division checks keep LLVM from vectorizing loops.


@njit(cache=True, inline="always", error_model="numpy")
def _valid_range(off, step, size, n_out):
    """Output indices o in [lo, hi) whose input index o·step + off lies in [0, size)."""
    lo = 0
    if off < 0:
        lo = (-off + step - 1) // step
    t = size - 1 - off
    hi = t // step + 1 if t >= 0 else 0
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi


@njit(cache=True, inline="always", error_model="numpy")
def _u(i):
    """An index known to be ≥ 0 as unsigned: Numba then skips its negative-index wrap-around test,
    which otherwise sits in every copy loop and keeps LLVM from vectorizing it."""
    return np.uint64(i)


@njit(cache=True, inline="always", error_model="numpy")
def _zero(a, start, stop):
    for t in range(start, stop):
        a[_u(t)] = 0


@njit(cache=True, error_model="numpy")
def im2col(x, cols, height, width, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """cols[(c·kh + i)·kw + j, n·P + oh·wo + ow] = x[n, c, oh·sh + i·dh − ph, ow·sw + j·dw − pw] (0 outside).

    x is (N, C, height·width), read through a flat view with computed offsets (no view per run:
    creating one per short 1-D run cost more than the copy). When stride is 1 and the output is as
    wide as the input ("same" padding), the output rows of one (c, i, j) and sample are one
    contiguous run of x shifted by a constant, copied in one pass with the few padding columns zeroed
    after (not Ho short copies).
    """
    n_batch, n_chan = x.shape[0], x.shape[1]
    xf = x.reshape(-1)
    hw = height * width
    p_out = ho * wo
    merged = sw == 1 and sh == 1 and wo == width
    for c in range(n_chan):
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(i * dh - ph, sh, height, ho)
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                off = j * dw - pw
                lo, hi = _valid_range(off, sw, width, wo)
                if oh_lo >= oh_hi or lo >= hi:
                    _zero(row, 0, row.size)
                    continue
                for n in range(n_batch):
                    d0 = n * p_out
                    s0 = (n * n_chan + c) * hw + (i * dh - ph) * width + off
                    _zero(row, d0, d0 + oh_lo * wo)
                    _zero(row, d0 + oh_hi * wo, d0 + p_out)
                    if merged:
                        a, b = oh_lo * wo + lo, (oh_hi - 1) * wo + hi
                        dst, src = d0 + a, s0 + a
                        for t in range(b - a):
                            row[_u(dst + t)] = xf[_u(src + t)]
                        for oh in range(oh_lo, oh_hi):
                            r = d0 + oh * wo
                            _zero(row, r, r + lo)
                            _zero(row, r + hi, r + wo)
                        continue
                    for oh in range(oh_lo, oh_hi):
                        r = d0 + oh * wo
                        _zero(row, r, r + lo)
                        _zero(row, r + hi, r + wo)
                        dst, src = r + lo, s0 + oh * sh * width + lo * sw
                        if sw == 1:
                            for t in range(hi - lo):
                                row[_u(dst + t)] = xf[_u(src + t)]
                        else:
                            for t in range(hi - lo):
                                row[_u(dst + t)] = xf[_u(src + t * sw)]


@njit(cache=True, error_model="numpy")
def col2im(dcols, dx, height, width, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """The adjoint of im2col: dx[n, c, ih·width + iw] = Σ dcols[k, n·P + oh·wo + ow] over the entries that read it.

    Same loop order and flat indexing as im2col. In the merged ("same", stride 1) case the entries of
    padding columns are zeroed in ``dcols`` (they belong to no input) so each (c, i, j) run is added
    in one contiguous pass; adding those zeros is exact.
    """
    n_batch, n_chan = dx.shape[0], dx.shape[1]
    dxf = dx.reshape(-1)
    dxf[:] = 0
    hw = height * width
    p_out = ho * wo
    merged = sw == 1 and sh == 1 and wo == width
    for c in range(n_chan):
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(i * dh - ph, sh, height, ho)
            if oh_lo >= oh_hi:
                continue
            for j in range(kw):
                row = dcols[(c * kh + i) * kw + j]
                off = j * dw - pw
                lo, hi = _valid_range(off, sw, width, wo)
                if hi <= lo:
                    continue
                for n in range(n_batch):
                    d0 = n * p_out
                    s0 = (n * n_chan + c) * hw + (i * dh - ph) * width + off
                    if merged:
                        for oh in range(oh_lo, oh_hi):
                            r = d0 + oh * wo
                            _zero(row, r, r + lo)
                            _zero(row, r + hi, r + wo)
                        a, b = oh_lo * wo + lo, (oh_hi - 1) * wo + hi
                        dst, src = s0 + a, d0 + a
                        for t in range(b - a):
                            dxf[_u(dst + t)] += row[_u(src + t)]
                        continue
                    for oh in range(oh_lo, oh_hi):
                        src, dst = d0 + oh * wo + lo, s0 + oh * sh * width + lo * sw
                        if sw == 1:
                            for t in range(hi - lo):
                                dxf[_u(dst + t)] += row[_u(src + t)]
                        else:
                            for t in range(hi - lo):
                                dxf[_u(dst + t * sw)] += row[_u(src + t)]


@njit(cache=True, error_model="numpy")
def rows_to_batch(y2, b, out, relu):
    """out[n, o, p] = y2[o, n·P + p] + b[o]: the product's (O, N·P) layout to (N, O, P), bias added in the
    same pass (b None: no bias) — and, if ``relu``, max(·, 0) too (NaN kept, as np.maximum keeps it)."""
    n_batch, n_out, p_out = out.shape
    of = out.reshape(-1)
    for o in range(n_out):
        src = y2[o]
        for n in range(n_batch):
            s0, d0 = n * p_out, (n * n_out + o) * p_out
            for p in range(p_out):
                v = src[_u(s0 + p)]
                if b is not None:
                    v = v + b[o]
                if relu:
                    v = 0 if v <= 0 else v
                of[_u(d0 + p)] = v


@njit(cache=True, error_model="numpy")
def batch_to_rows(g, gt, out_flat):
    """gt[o, n·P + p] = g[n, o, p]: the output gradient in the column layout of the product; given the
    layer's ReLU output (flattened, g's layout), through ReLU's derivative in the same pass (0 where it
    is not > 0). None: no ReLU."""
    n_batch, n_out, p_out = g.shape
    gf = g.reshape(-1)
    for o in range(n_out):
        dst = gt[o]
        for n in range(n_batch):
            d0, s0 = n * p_out, (n * n_out + o) * p_out
            for p in range(p_out):
                v = gf[_u(s0 + p)]
                if out_flat is not None:
                    v = v if out_flat[_u(s0 + p)] > 0 else 0
                dst[_u(d0 + p)] = v


@njit(cache=True, error_model="numpy")
def max_pool(x, y, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    """y = max over each window of x (planes (N·C, H, W)); idx = flat position ih·W + iw of the maximum.

    As in PyTorch: the first maximum in row-major window order wins ties and a NaN wins over numbers;
    a window wholly in the padding (impossible with padding ≤ kernel/2) gives −inf and idx −1.
    An output row is updated one window offset (i, j) at a time, through flat offsets (no views:
    a view per row and offset cost more than the comparisons) and a select rather than branches.
    Holding each output's maximum in a register instead, with the window loops inside, was slower
    (runtime-sized windows keep the inner loops short).
    """
    n_planes, height, width = x.shape
    ho, wo = y.shape[1], y.shape[2]
    xf, yf, af = x.reshape(-1), y.reshape(-1), idx.reshape(-1)
    hw = height * width
    ninf = x.dtype.type(-np.inf)
    for q in range(n_planes):
        x0 = q * hw
        for oh in range(ho):
            o = (q * ho + oh) * wo
            for ow in range(wo):
                yf[_u(o + ow)] = ninf
                af[_u(o + ow)] = -1
            for i in range(kh):
                ih = oh * sh + i * dh - ph
                if ih < 0 or ih >= height:
                    continue
                for j in range(kw):
                    off = j * dw - pw
                    lo, hi = _valid_range(off, sw, width, wo)
                    base = ih * width + off
                    for ow in range(lo, hi):
                        pos = base + ow * sw
                        v = xf[_u(x0 + pos)]
                        b = yf[_u(o + ow)]
                        a = af[_u(o + ow)]
                        take = (v > b) | (v != v) | (a < 0)
                        yf[_u(o + ow)] = v if take else b
                        af[_u(o + ow)] = pos if take else a


@njit(cache=True, error_model="numpy")
def max_pool_2x2(x, y, idx):
    """``max_pool`` for the common 2×2 window, stride 2, no padding or dilation: the four candidates of
    each window in registers, compared in the same row-major order with the same rule (first maximum
    wins ties, a NaN wins over numbers), so the result and idx are identical to ``max_pool``'s."""
    n_planes, height, width = x.shape
    ho, wo = y.shape[1], y.shape[2]
    xf, yf, af = x.reshape(-1), y.reshape(-1), idx.reshape(-1)
    hw = height * width
    for q in range(n_planes):
        x0 = q * hw
        for oh in range(ho):
            o = (q * ho + oh) * wo
            r0 = 2 * oh * width
            r1 = r0 + width
            for ow in range(wo):
                p = r0 + 2 * ow
                b = xf[_u(x0 + p)]
                a = p
                for pos in (p + 1, r1 + 2 * ow, r1 + 2 * ow + 1):
                    v = xf[_u(x0 + pos)]
                    take = (v > b) | (v != v)
                    b = v if take else b
                    a = pos if take else a
                yf[_u(o + ow)] = b
                af[_u(o + ow)] = a


@njit(cache=True, error_model="numpy")
def max_pool_2x2_backward(g, idx, dx, ho, wo, height, width):
    """``max_pool_backward`` for ``max_pool_2x2`` in one pass instead of zeroing dx first: the windows
    do not overlap, so each of the four positions gets its window's g (as 0 + g, the same bits as
    the general kernel's accumulation) or 0; a last odd row or column, in no window, gets 0."""
    n_planes = g.shape[0]
    hw = height * width
    gf, af, df = g.reshape(-1), idx.reshape(-1), dx.reshape(-1)
    for q in range(n_planes):
        d0, o0 = q * hw, q * ho * wo
        for oh in range(ho):
            r0 = 2 * oh * width
            r1 = r0 + width
            for ow in range(wo):
                gv = gf[_u(o0 + oh * wo + ow)] + 0
                a = af[_u(o0 + oh * wo + ow)]
                for pos in (r0 + 2 * ow, r0 + 2 * ow + 1, r1 + 2 * ow, r1 + 2 * ow + 1):
                    df[_u(d0 + pos)] = gv if a == pos else 0
            if width > 2 * wo:
                df[_u(d0 + r0 + width - 1)] = 0
                df[_u(d0 + r1 + width - 1)] = 0
        for t in range(2 * ho * width, hw):
            df[_u(d0 + t)] = 0


@njit(cache=True, error_model="numpy")
def max_pool_backward(g, idx, dx):
    """dx (planes (N·C, H·W)) = Σ of g over the windows whose maximum sat there."""
    n_planes, p_out = g.shape
    hw = dx.shape[1]
    gf, af, df = g.reshape(-1), idx.reshape(-1), dx.reshape(-1)
    df[:] = 0
    for q in range(n_planes):
        o, d0 = q * p_out, q * hw
        for p in range(p_out):
            a = af[_u(o + p)]
            if a >= 0:
                df[_u(d0 + a)] += gf[_u(o + p)]


@njit(cache=True, error_model="numpy")
def avg_pool(x, y, kh, kw, sh, sw, ph, pw, scale):
    """y = scale·Σ over each window of x (planes (N·C, H, W)); padding counts as zeros (scale = 1/(kh·kw))."""
    n_planes, height, width = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for q in range(n_planes):
        for oh in range(ho):
            for ow in range(wo):
                s = x[q, 0, 0] * 0
                for i in range(kh):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= height:
                        continue
                    for j in range(kw):
                        iw = ow * sw + j - pw
                        if 0 <= iw < width:
                            s += x[q, ih, iw]
                y[q, oh, ow] = s * scale


@njit(cache=True, error_model="numpy")
def avg_pool_backward(g, dx, kh, kw, sh, sw, ph, pw, scale):
    """The adjoint of avg_pool: every input position receives scale·g of each window containing it."""
    n_planes, height, width = dx.shape
    ho, wo = g.shape[1], g.shape[2]
    for q in range(n_planes):
        dx[q] = 0
        for oh in range(ho):
            for ow in range(wo):
                v = g[q, oh, ow] * scale
                for i in range(kh):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= height:
                        continue
                    for j in range(kw):
                        iw = ow * sw + j - pw
                        if 0 <= iw < width:
                            dx[q, ih, iw] += v
