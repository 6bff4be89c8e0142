"""Categories of a problem, derived from the aten ops it runs, its module types and its name.

A problem gets an ordered list of categories, the primary one first. The primary category is what
the metrics group by; the full list feeds the agent's memory. Vocabulary:

    elementwise, activation, reduction, argreduce, softmax, norm, matmul, conv, pooling, loss,
    scan, fusion, block, other

Rules, in order:
1. Ops map to families (``aten.addmm`` -> matmul, ``aten.native_layer_norm`` -> norm, ...); layout
   and allocation ops (view, transpose, empty, ...) map to nothing. Module types and the names the
   forward calls add families too, so a program that meta tracing could not finish is still
   categorised.
2. A program with two or more matmul/conv invocations and anything else is a ``block`` (an MLP, an
   attention block, a residual block); one matmul/conv with any other family is a ``fusion``.
   Level 3 problems with a matmul/conv are blocks, level 2 problems with two families fusions.
3. Otherwise the primary family is a hint from the problem's name (``HingeLoss`` -> loss,
   ``RMSNorm`` -> norm) or from its structure (a scalar from two inputs is a loss; an output shaped
   like the input, divided by a norm or root-mean, is a norm) when that applies, else the family
   with the highest priority below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from evokernel.programs import ProgramProfile

__all__ = ["CATEGORIES", "categorize", "op_family"]

# Also the priority order for the primary category of a single-family program.
CATEGORIES = (
    "block",
    "fusion",
    "conv",
    "matmul",
    "loss",
    "norm",
    "softmax",
    "scan",
    "pooling",
    "argreduce",
    "reduction",
    "activation",
    "elementwise",
    "other",
)
_PRIORITY = {c: i for i, c in enumerate(CATEGORIES)}
_ANCHORS = ("matmul", "conv")

_OPS: dict[str, tuple[str, ...]] = {
    "matmul": (
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "addbmm",
        "matmul",
        "linear",
        "mv",
        "addmv",
        "dot",
        "vdot",
        "tensordot",
        "outer",
        "ger",
        "addr",
        "chain_matmul",
        "linalg_matmul",
        "_scaled_mm",
        "_addmm_activation",
    ),
    "conv": (
        "convolution",
        "_convolution",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "cudnn_convolution",
        "cudnn_convolution_transpose",
        "mkldnn_convolution",
        "_slow_conv2d_forward",
        "slow_conv3d_forward",
        "slow_conv_transpose2d",
        "slow_conv_transpose3d",
        "convolution_overrideable",
        "_conv_depthwise2d",
        "conv_tbc",
    ),
    "softmax": ("_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax"),
    "norm": (
        "native_layer_norm",
        "layer_norm",
        "native_batch_norm",
        "batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit_functional",
        "native_group_norm",
        "group_norm",
        "instance_norm",
        "_fused_rms_norm",
        "rms_norm",
        "_batch_norm_impl_index",
        "cudnn_batch_norm",
        "miopen_batch_norm",
    ),
    "pooling": (
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "max_pool3d_with_indices",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "_adaptive_avg_pool2d",
        "_adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "fractional_max_pool2d",
        "fractional_max_pool3d",
        "mkldnn_max_pool2d",
        "_upsample_nearest_exact2d",
    ),
    "loss": (
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "nll_loss",
        "nll_loss_forward",
        "nll_loss2d_forward",
        "nll_loss_nd",
        "cross_entropy_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "soft_margin_loss",
        "multi_margin_loss",
        "multilabel_margin_loss_forward",
        "kl_div",
        "margin_ranking_loss",
        "hinge_embedding_loss",
        "cosine_embedding_loss",
        "triplet_margin_loss",
        "poisson_nll_loss",
        "ctc_loss",
        "_ctc_loss",
    ),
    "scan": ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "_cummax_helper", "_cummin_helper"),
    "argreduce": ("argmax", "argmin", "topk", "sort", "argsort", "kthvalue", "median", "nanmedian", "mode"),
    "reduction": (
        "sum",
        "mean",
        "amax",
        "amin",
        "max",
        "min",
        "prod",
        "var",
        "std",
        "var_mean",
        "std_mean",
        "norm",
        "linalg_vector_norm",
        "frobenius_norm",
        "logsumexp",
        "all",
        "any",
        "count_nonzero",
        "nansum",
        "aminmax",
    ),
    "activation": (
        "relu",
        "relu6",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "elu",
        "selu",
        "celu",
        "leaky_relu",
        "hardtanh",
        "hardswish",
        "hardsigmoid",
        "softplus",
        "softshrink",
        "hardshrink",
        "mish",
        "prelu",
        "_prelu_kernel",
        "glu",
        "log_sigmoid_forward",
        "threshold",
        "rrelu_with_noise",
        "logit",
    ),
    "elementwise": (
        "add",
        "sub",
        "rsub",
        "mul",
        "div",
        "pow",
        "exp",
        "exp2",
        "log",
        "log2",
        "log10",
        "log1p",
        "expm1",
        "abs",
        "neg",
        "sqrt",
        "rsqrt",
        "reciprocal",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "clamp",
        "clamp_min",
        "clamp_max",
        "clip",
        "where",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "sign",
        "sgn",
        "floor",
        "ceil",
        "round",
        "trunc",
        "frac",
        "erf",
        "erfc",
        "erfinv",
        "masked_fill",
        "bitwise_not",
        "bitwise_and",
        "bitwise_or",
        "bitwise_xor",
        "lerp",
        "addcmul",
        "addcdiv",
        "xlogy",
        "fmod",
        "remainder",
        "square",
        "lt",
        "gt",
        "le",
        "ge",
        "eq",
        "ne",
        "logical_not",
        "logical_and",
        "logical_or",
        "logical_xor",
        "isnan",
        "isinf",
        "nan_to_num",
        "copysign",
        "hypot",
        "heaviside",
        "sigmoid_backward",
        "dropout",
        "native_dropout",
        "bernoulli",
        "true_divide",
        "floor_divide",
        "mvlgamma",
        "lgamma",
        "digamma",
        "special_erfcx",
        "exponential",
    ),
}
_OP_FAMILY: dict[str, str] = {op: fam for fam, ops in _OPS.items() for op in ops}

# Data movement and allocation: no category of their own.
_LAYOUT_OPS = frozenset(
    """view _unsafe_view reshape _reshape_alias t transpose permute expand expand_as contiguous clone
    alias detach unsqueeze squeeze split split_with_sizes chunk unsafe_split unsafe_chunk slice
    select unbind flip roll cat stack empty empty_like empty_strided new_empty new_empty_strided zeros
    zeros_like new_zeros ones ones_like new_ones full full_like new_full fill fill_ zero_ copy_
    _to_copy to lift_fresh lift_fresh_copy scalar_tensor arange as_strided narrow repeat
    constant_pad_nd pad flatten unflatten view_as _local_scalar_dense resize_ set_ index
    index_select gather scatter detach_ masked_select movedim diagonal tril triu
    _has_compatible_shallow_copy_type item""".split()
)

_SDPA = re.compile(r"^_?scaled_dot_product|^_flash_attention|^_efficient_attention")

_MODULE_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(Linear|Bilinear|LazyLinear)$"), "matmul"),
    (re.compile(r"^(Lazy)?Conv(Transpose)?[123]d$"), "conv"),
    (re.compile(r"Norm"), "norm"),
    (re.compile(r"Pool"), "pooling"),
    (re.compile(r"^(Log)?Softmax|^Softmin"), "softmax"),
    (re.compile(r"Loss$"), "loss"),
    (re.compile(r"^MultiheadAttention$"), "matmul"),
    (
        re.compile(
            r"^(ReLU6?|GELU|SiLU|Sigmoid|Tanh|ELU|SELU|CELU|LeakyReLU|Hardtanh|Hardswish|Hardsigmoid|"
            r"Softplus|Softsign|Softshrink|Hardshrink|Mish|PReLU|GLU|LogSigmoid|Threshold|Tanhshrink)$"
        ),
        "activation",
    ),
)

# Names the forward calls (torch.nn.functional and tensor methods), for untraced programs.
_IDENT_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(matmul|mm|bmm|baddbmm|addmm|linear|einsum|mv|dot|tensordot)$"), "matmul"),
    (re.compile(r"^conv(_transpose)?[123]d$"), "conv"),
    (re.compile(r"^(log_)?softmax$"), "softmax"),
    (re.compile(r"^(layer|batch|group|instance|rms)_norm$|^normalize$"), "norm"),
    (re.compile(r"pool"), "pooling"),
    (re.compile(r"loss$|^cross_entropy$|^kl_div$|^binary_cross_entropy"), "loss"),
    (re.compile(r"^cum(sum|prod|max|min)$|^logcumsumexp$"), "scan"),
    (re.compile(r"^arg(max|min|sort)$|^topk$|^sort$"), "argreduce"),
    (re.compile(r"^(sum|mean|amax|amin|prod|var|std|logsumexp|norm)$"), "reduction"),
    (
        re.compile(
            r"^(relu6?|gelu|silu|sigmoid|tanh|elu|selu|celu|leaky_relu|hardtanh|hardswish|hardsigmoid|"
            r"softplus|softsign|mish|glu|logsigmoid)$"
        ),
        "activation",
    ),
)

# Words in a problem's name that say what it is, checked in this order.
_NAME_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"loss|entropy|divergence|kldiv", re.I), "loss"),
    (re.compile(r"cumsum|cumprod|prefix|scan", re.I), "scan"),
    (re.compile(r"arg_?max|arg_?min", re.I), "argreduce"),
    (re.compile(r"softmax", re.I), "softmax"),
    (re.compile(r"norm", re.I), "norm"),
    (re.compile(r"pool", re.I), "pooling"),
    (
        re.compile(
            r"relu|gelu|silu|swish|sigmoid|tanh|elu|softplus|softsign|hardtanh|hardswish|mish|activation",
            re.I,
        ),
        "activation",
    ),
)

_NORM_REDUCTIONS = frozenset(
    {
        "aten.mean",
        "aten.sum",
        "aten.var",
        "aten.std",
        "aten.var_mean",
        "aten.std_mean",
        "aten.linalg_vector_norm",
        "aten.norm",
        "aten.frobenius_norm",
    }
)
_NORM_SCALERS = frozenset(
    {"aten.sqrt", "aten.rsqrt", "aten.linalg_vector_norm", "aten.norm", "aten.std", "aten.frobenius_norm"}
)


def op_family(op: str) -> str | None:
    """Family of one aten op (``"aten.addmm"`` -> ``"matmul"``); None for layout ops, "other" if unknown."""
    name = op.split(".", 1)[1] if op.startswith("aten.") else op
    name = name.rstrip("_") if name not in _OP_FAMILY else name
    if _SDPA.search(name):
        return "matmul"
    if name in _OP_FAMILY:
        return _OP_FAMILY[name]
    if name in _LAYOUT_OPS:
        return None
    return "other"


def _add(seq: list[str], fam: str | None) -> None:
    if fam is not None and fam not in seq:
        seq.append(fam)


def _anchor_count(profile: ProgramProfile) -> int:
    count = 0
    for op, n in profile.op_counts.items():
        fam = op_family(op)
        if fam in _ANCHORS:
            name = op.split(".", 1)[-1]
            count += n * (2 if _SDPA.search(name) else 1)  # attention: two matmuls in one op
    if not profile.traced:  # fall back to modules: each Linear/Conv is one invocation at least
        count = max(count, sum(1 for m in profile.module_types if re.match(r"^(Linear|(Lazy)?Conv)", m)))
    return count


def _structure_hint(profile: ProgramProfile) -> str | None:
    ops = set(profile.ops)
    if not profile.traced or not profile.output_shapes:
        return None
    out_shapes = profile.output_shapes
    if len(out_shapes) == 1 and out_shapes[0] == [] and len(profile.input_shapes) >= 2:
        if ops & {f"aten.{op}" for op in ("sum", "mean")} or any(op_family(o) == "loss" for o in ops):
            return "loss"  # a scalar computed from predictions and targets
    if (
        profile.input_shapes
        and out_shapes[0] == profile.input_shapes[0]
        and ops & _NORM_REDUCTIONS
        and ops & _NORM_SCALERS
        and ops & {"aten.div", "aten.mul"}
    ):
        return "norm"  # x scaled by a statistic of itself (RMSNorm, L2 normalisation, ...)
    return None


def categorize(profile: ProgramProfile, *, name: str = "", level: int | None = None) -> list[str]:
    """Ordered categories of a program (primary first) from its profile, name and level."""
    families: list[str] = []
    for op in profile.ops:
        _add(families, op_family(op))
    for module in profile.module_types:
        for pattern, fam in _MODULE_FAMILIES:
            if pattern.search(module):
                _add(families, fam)
                break
    if not profile.traced:
        for ident in profile.identifiers:
            for pattern, fam in _IDENT_FAMILIES:
                if pattern.search(ident):
                    _add(families, fam)
                    break
    if len(families) > 1 and "other" in families:
        families.remove("other")

    anchors = _anchor_count(profile)
    computational = [f for f in families if f not in _ANCHORS]
    hint = next((fam for pattern, fam in _NAME_HINTS if pattern.search(name)), None)
    structure = _structure_hint(profile)

    if anchors >= 2 and computational or (level is not None and level >= 3 and anchors >= 1):
        primary = "block"
    elif anchors >= 1 and computational or (level == 2 and len(families) >= 2):
        primary = "fusion"
    elif anchors >= 1:
        primary = min((f for f in families if f in _ANCHORS), key=_PRIORITY.__getitem__)
    elif structure is not None:
        primary = structure
    elif hint is not None and (hint in families or families in ([], ["elementwise"], ["other"])):
        primary = hint
    elif hint in ("loss", "norm", "activation") and set(families) <= {"elementwise", "reduction", "other"}:
        primary = hint  # hand-written losses, norms and activations
    elif families:
        primary = min(families, key=_PRIORITY.__getitem__)
    else:
        primary = hint or "other"
    rest = sorted((f for f in families if f != primary), key=_PRIORITY.__getitem__)
    return [primary, *rest]


def primary_counts(categories: Iterable[list[str]]) -> dict[str, int]:
    """How many programs have each primary category (for summaries)."""
    counts: dict[str, int] = {}
    for cats in categories:
        key = cats[0] if cats else "other"
        counts[key] = counts.get(key, 0) + 1
    return counts
