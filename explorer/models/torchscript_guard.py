"""Inspection of an uploaded TorchScript archive before anything in it can run.

TorchScript is executable code: ``torch.from_file`` in ``forward`` reads and writes files, and a
``__setstate__`` method runs inside ``torch.jit.load``. An archive is therefore inspected in two layers,
and refused (``RefusedModel``, one line naming the offending operator) when anything is outside an allowlist
of tensor maths:

1. ``inspect_archive`` (before ``torch.jit.load``, no torch needed): the zip's structure and size, every
   pickle (``data.pkl``, ``constants.pkl``, ``*.debug_pkl``) read opcode by opcode with ``pickletools`` (never
   unpickled) so that only the globals TorchScript itself writes appear, and every serialized source file
   under ``code/`` parsed with ``ast``: each ``torch.X`` / ``ops.aten.X`` / ``ops.prim.X`` must be in
   ``ALLOWED_OPS``; other ``ops.*`` namespaces, ``torch.classes`` and custom classes, ``print``/``open`` and
   any name that is neither a TorchScript builtin nor defined in the archive, ``__setstate__`` methods and
   (``while`` loops are allowed: see Loops below).
2. ``check_graphs`` (inside the sandbox process, after ``torch.jit.load`` and before any forward): every node
   of every method's inlined graph must be an allowed operator, and no tensor value may become a Python
   number (``aten::Int``/``Float``/``Bool``/``item``... on a tensor) and no advanced indexing may use an index
   computed from the input. With these rules, control flow, loop counts and tensor sizes depend only on the
   input's shape and the archive's constants, never on pixel values, so the validation forward (run under
   time and memory limits) exercises the same work as every later forward of the same shape.

Loops: ``for`` and ``while`` loops are allowed (TorchScript writes a ``for`` loop with a ``break`` as
``while``), because the rules of layer 2 make every loop condition and trip count independent of pixel values:
a loop runs the same number of times in validation as later. A loop that never ends, or over a huge constant,
passes inspection and is stopped by the validation time limit.

This module imports only the standard library at module level: the sandbox process loads it by path.
"""

from __future__ import annotations

import ast
import io
import pickletools
import zipfile

# ------------------------------------------------------------------------------------------ allowlist

_ATEN = """
add add_ sub sub_ rsub mul mul_ div div_ true_divide floordiv floor_divide remainder fmod neg neg_ pow pow_
sqrt rsqrt exp exp_ log log_ log2 log10 log1p expm1 abs abs_ sign reciprocal square floor ceil round trunc frac
sin cos tan tanh tanh_ sigmoid sigmoid_ erf erfc atan atan2 asin acos sinh cosh lerp clamp clamp_ clamp_min
clamp_min_ clamp_max clamp_max_ maximum minimum max min amax amin mean sum prod std var var_mean std_mean norm
linalg_vector_norm frobenius_norm argmax argmin cumsum cumprod logsumexp softmax log_softmax where
eq ne lt le gt ge __and__ __or__ __xor__ __not__ __iand__ __ior__ logical_and logical_or logical_not logical_xor
bitwise_and bitwise_or bitwise_not
relu relu_ relu6 leaky_relu leaky_relu_ elu elu_ selu selu_ celu celu_ gelu silu silu_ mish mish_ hardswish
hardswish_ hardsigmoid hardsigmoid_ hardtanh hardtanh_ softplus softsign prelu glu threshold threshold_
log_sigmoid rrelu
conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d _convolution convolution linear bilinear
matmul mm bmm baddbmm addmm addmv addcmul addcdiv einsum dot outer
max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d
adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d
lp_pool1d lp_pool2d pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
upsample_nearest1d upsample_nearest2d upsample_bilinear2d upsample_bicubic2d upsample_linear1d
batch_norm layer_norm group_norm instance_norm native_layer_norm local_response_norm
dropout dropout_ feature_dropout feature_dropout_ alpha_dropout alpha_dropout_ feature_alpha_dropout
feature_alpha_dropout_ bernoulli bernoulli_
view reshape flatten unflatten squeeze squeeze_ unsqueeze unsqueeze_ permute transpose transpose_ t contiguous
expand expand_as repeat tile cat concat concatenate stack hstack vstack split split_with_sizes chunk unbind
select slice narrow roll flip pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d
replication_pad2d view_as reshape_as movedim moveaxis swapaxes index_select gather masked_fill masked_fill_
clone copy detach to type_as index float double half zero_ fill_ copy_ triu tril topk sort scaled_dot_product_attention
_native_multi_head_attention embedding
zeros zeros_like ones ones_like empty empty_like full full_like new_zeros new_ones new_empty new_full arange
linspace tensor scalar_tensor eye
size dim numel len is_floating_point __getitem__ __setitem__ _set_item append extend insert pop format warn
__is__ __isnot__ __contains__ list dict keys values items str Int Float Bool
any all is_grad_enabled is_autocast_enabled __range_length __derive_index __round_to_zero_floordiv
"""

_PRIM = """
Constant GetAttr If Loop ListConstruct ListUnpack TupleConstruct TupleIndex TupleUnpack TupleSlice DictConstruct
DictIndex RaiseException Uninitialized unchecked_cast device dtype type is_nested requires_grad layout is_cuda
NumToTensor min max abs CreateObject isinstance data shape
"""

ALLOWED_OPS: frozenset[str] = frozenset(
    [f"aten::{n}" for n in _ATEN.split()] + [f"prim::{n}" for n in _PRIM.split()]
)

#: graph nodes that turn tensor values into Python numbers (refused when an input is a tensor)
TENSOR_TO_SCALAR: frozenset[str] = frozenset({"aten::Int", "aten::Float", "aten::Bool"})

#: names the TorchScript source may use without defining them (builtins, types, roots of qualified names)
_BUILTIN_NAMES = frozenset("""
annotate unchecked_cast uninitialized isinstance getattr hasattr range len int float bool str list tuple dict
enumerate zip min max abs
Tensor List Optional Tuple Dict NoneType Final Module Any Device number Union Future Enum NamedTuple Generator
Layout Storage ScalarType Stream
torch ops __torch__ CONSTANTS None True False __annotations__ inf nan
""".split())

#: roots that may only be used at the start of a qualified name (``torch.X``, never a bare ``torch``)
_ROOTS = frozenset({"torch", "ops", "__torch__", "CONSTANTS"})

_GLOBALS_ALLOWED: dict[str, frozenset[str] | None] = {
    "torch._utils": frozenset({"_rebuild_tensor_v2", "_rebuild_tensor"}),
    "torch.jit._pickle": frozenset({"build_intlist", "build_floatlist", "build_boollist", "build_tensorlist",
                                     "build_tensor_from_id", "restore_type_tag", "build_complexlist"}),
    "collections": frozenset({"OrderedDict"}),
    "builtins": frozenset({"set"}),
}

_REFUSED_OPCODES = frozenset({"STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4"})


class RefusedModel(ValueError):
    """An uploaded TorchScript archive uses something outside the allowlist (one line naming it)."""


def _refuse(what: str, where: str) -> RefusedModel:
    return RefusedModel(f"refused: the TorchScript file uses {what} (in {where}); only tensor maths is allowed "
                        "in uploaded TorchScript")


# ------------------------------------------------------------------------------------------ layer 1


def _check_pickle(data: bytes, where: str) -> None:
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in _REFUSED_OPCODES:
                raise _refuse(f"the pickle opcode {op.name}", where)
            if op.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                if module == "__torch__" or module.startswith("__torch__."):
                    if module.startswith("__torch__.torch.classes"):
                        raise _refuse(f"the custom class {module}.{name}", where)
                    continue
                if module == "torch" and name.endswith("Storage"):
                    continue
                allowed = _GLOBALS_ALLOWED.get(module)
                if allowed is None or name not in allowed:
                    raise _refuse(f"the pickled global {module}.{name}", where)
    except RefusedModel:
        raise
    except Exception as exc:  # a malformed pickle: refused, never loaded
        raise RefusedModel(f"refused: {where} is not a valid TorchScript pickle ({exc.__class__.__name__})") from None


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _op_of(parts: list[str]) -> str | None:
    """The operator a qualified name compiles to (``torch.conv2d`` -> ``aten::conv2d``), None if not an op."""
    if parts[0] == "torch":
        if len(parts) != 2:
            return ".".join(parts)  # torch.classes.x, torch.ops.x, torch.jit.x: never allowed
        return f"aten::{parts[1]}"
    if parts[0] == "ops":
        if len(parts) != 3 or parts[1] not in ("aten", "prim"):
            return ".".join(parts)
        return f"{parts[1]}::{parts[2]}"
    return None


class _SourceChecker(ast.NodeVisitor):
    def __init__(self, where: str, defined: set[str]) -> None:
        self.where = where
        self.defined = defined

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(isinstance(f, ast.FunctionDef) and f.name == "__setstate__" for f in node.body):
            raise _refuse("a __setstate__ method (it runs inside torch.jit.load)", self.where)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name.startswith("__") and node.name not in ("__init__", "__len__", "__getitem__", "__contains__"):
            raise _refuse(f"a {node.name} method", self.where)
        self.generic_visit(node)

    def visit_Import(self, node: ast.AST) -> None:
        raise _refuse("an import statement", self.where)

    visit_ImportFrom = visit_Import

    def visit_With(self, node: ast.With) -> None:
        raise _refuse("a with statement", self.where)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = _dotted(node)
        if parts is not None and parts[0] in _ROOTS:
            if parts[0] == "__torch__":
                if ".".join(parts).startswith("__torch__.torch.classes"):
                    raise _refuse(f"the custom class {'.'.join(parts)}", self.where)
                return
            if parts[0] == "CONSTANTS":
                return
            op = _op_of(parts)
            if op not in ALLOWED_OPS:
                raise _refuse(f"the operator {op}", self.where)
            return
        # an attribute of a value (s.conv, self._conv_forward): only names the archive itself declares
        if node.attr not in self.defined:
            raise _refuse(f"the attribute or method {node.attr!r}, which the archive does not define", self.where)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _ROOTS and node.id != "__torch__":
            raise _refuse(f"a bare reference to {node.id}", self.where)
        if isinstance(node.ctx, ast.Load) and node.id not in _BUILTIN_NAMES and node.id not in self.defined:
            raise _refuse(f"the name {node.id!r}, which is neither a TorchScript builtin nor defined in the archive",
                          self.where)


def _defined_names(tree: ast.AST) -> set[str]:
    """Every name the file binds: classes, functions, methods, arguments, assignment and loop targets,
    and the attributes its classes declare."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


def inspect_archive(data: bytes, max_unpacked_bytes: int) -> list[str]:
    """Inspect a TorchScript archive without loading it; returns its source files. Raises ``RefusedModel``."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise RefusedModel("not a TorchScript file (not a zip archive)") from None
    if sum(i.file_size for i in infos) > max_unpacked_bytes:
        raise RefusedModel(f"refused: the archive unpacks to more than {max_unpacked_bytes // 2**20} MB")
    names = [i.filename for i in infos]
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or not any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names):
        raise RefusedModel("not a TorchScript file (no data.pkl at the archive root): save it with torch.jit.save")
    if any(".." in n.split("/") or n.startswith("/") for n in names):
        raise RefusedModel("refused: the archive has a path that leaves its folder")
    root = roots.pop()
    sources = [n for n in names if n.startswith(f"{root}/code/") and n.endswith(".py")]
    # names defined anywhere in the archive's code (a method may be called from another file)
    trees: dict[str, ast.AST] = {}
    defined: set[str] = set()
    for n in sources:
        try:
            text = zf.read(n).decode("utf-8")
            trees[n] = ast.parse(text, filename=n)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            raise RefusedModel(f"refused: {n.split('/', 1)[1]} is not TorchScript source") from None
        defined |= _defined_names(trees[n])
    for n in names:
        if n.endswith(".pkl") or n.endswith(".debug_pkl"):
            _check_pickle(zf.read(n), n.split("/", 1)[1])
    for n, tree in trees.items():
        _SourceChecker(n.split("/", 1)[1], defined).visit(tree)
    return sources


# ------------------------------------------------------------------------------------------ layer 2


def _blocks_nodes(block):  # noqa: ANN001, ANN202 (torch._C types)
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from _blocks_nodes(sub)


_INDEX_SOURCES = frozenset({"prim::GetAttr", "prim::Constant", "aten::view", "aten::reshape", "aten::flatten",
                            "aten::to", "aten::contiguous", "aten::long", "prim::ListConstruct"})


def _static_index(value) -> bool:  # noqa: ANN001
    """True when an index tensor comes from the module's own attributes or constants (not from the input)."""
    node = value.node()
    if node.kind() in ("prim::GetAttr", "prim::Constant"):
        return True
    if node.kind() not in _INDEX_SOURCES:
        return False
    inputs = list(node.inputs())
    if node.kind() == "prim::ListConstruct":
        return all(_static_index(v) for v in inputs)
    return bool(inputs) and _static_index(inputs[0])


def check_graphs(module) -> None:  # noqa: ANN001 (a torch.jit.ScriptModule)
    """Check every method of every submodule of a loaded archive (run in the sandbox, before any forward)."""
    import torch

    for sub in module.modules():
        for name in sub._c._method_names():
            graph = sub._c._get_method(name).graph.copy()
            torch._C._jit_pass_inline(graph)
            where = f"{sub.original_name}.{name}"
            for node in _blocks_nodes(graph):
                kind = node.kind()
                if kind not in ALLOWED_OPS:
                    raise _refuse(f"the operator {kind}", where)
                if kind in TENSOR_TO_SCALAR and any(isinstance(v.type(), torch._C.TensorType) for v in node.inputs()):
                    raise _refuse(f"{kind} on a tensor (control flow or sizes that depend on pixel values)", where)
                if kind == "aten::index" and not _static_index(list(node.inputs())[1]):
                    raise _refuse("aten::index with an index computed from the input (data-dependent sizes)", where)
