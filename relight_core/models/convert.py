"""TFLite flatbuffer → ONNX converter for the MediaPipe models we use.

Contract: `convert_tflite(tflite_bytes, model_name) -> onnx.ModelProto`.
The ONNX graph keeps the TFLite graph's NHWC float32 inputs and outputs (same names), runs NCHW
inside, and stores every weight as an fp32 initializer: DEQUANTIZE (fp16 or int8) and DENSIFY
(sparse weights) are folded at conversion time, so the graph holds no quantisation ops.
An op outside `SUPPORTED_OPS` raises `ConversionError` naming the op and the model.

Layout rule: every rank-4 activation is held NCHW; everything else keeps TFLite's layout.
Ops that depend on the layout (RESHAPE, CONCATENATION, MEAN axes) translate accordingly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.DimensionType import DimensionType
from tflite.Padding import Padding
from tflite.SparseIndexVector import SparseIndexVector
from tflite.TensorType import TensorType

from .catalog import CONVERTER_VERSION

OPSET = 17

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_NUMPY_DTYPES = {
    TensorType.FLOAT32: np.float32,
    TensorType.FLOAT16: np.float16,
    TensorType.INT32: np.int32,
    TensorType.UINT8: np.uint8,
    TensorType.INT64: np.int64,
    TensorType.INT8: np.int8,
    TensorType.INT16: np.int16,
}
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


class ConversionError(RuntimeError):
    """The TFLite model uses something this converter does not translate."""


@dataclass
class _Graph:
    """ONNX graph under construction plus what we know about each TFLite tensor."""

    model: tflite.Model
    subgraph: tflite.SubGraph
    model_name: str
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    constants: dict[int, np.ndarray] = field(default_factory=dict)  # folded TFLite constants
    counter: int = 0

    # --- TFLite tensor access -------------------------------------------------------------
    def tensor(self, index: int) -> tflite.Tensor:
        return self.subgraph.Tensors(index)

    def shape(self, index: int) -> list[int]:
        return (
            [int(d) for d in self.tensor(index).ShapeAsNumpy()]
            if self.tensor(index).ShapeLength()
            else []
        )

    def name(self, index: int) -> str:
        return f"t{index}"

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    # --- emitting -------------------------------------------------------------------------
    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=self.fresh(op_type), **attrs)
        )

    def initializer(self, array: np.ndarray, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def fail(self, what: str) -> ConversionError:
        return ConversionError(f"model {self.model_name!r}: {what}")


# --- constants: buffers, DEQUANTIZE, DENSIFY ---------------------------------------------------
def _buffer_array(g: _Graph, index: int) -> np.ndarray | None:
    """Raw values of a tensor that has a buffer (a constant), else None."""
    tensor = g.tensor(index)
    buffer = g.model.Buffers(tensor.Buffer())
    if buffer is None or buffer.DataLength() == 0:
        return None
    dtype = _NUMPY_DTYPES.get(tensor.Type())
    if dtype is None:
        raise g.fail(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
    values = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype)
    if tensor.Sparsity() is not None:
        return values  # still compressed: DENSIFY expands it
    return values.reshape(g.shape(index))


def _index_vector(table, kind: int) -> np.ndarray:
    vector_class = {
        SparseIndexVector.Int32Vector: tflite.Int32Vector,
        SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
        SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
    }[kind]
    vector = vector_class()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64)


def densify(values: np.ndarray, shape: list[int], sparsity: tflite.SparsityParameters):
    """Expand TFLite sparse storage (DENSE / SPARSE_CSR levels, optional blocks) to a dense array.

    Walks the traversal levels breadth-first with numpy so that large weight tensors stay fast.
    """
    rank = len(shape)
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(v) for v in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    positions = np.zeros(1, dtype=np.int64)
    coords = np.zeros((1, len(order)), dtype=np.int64)  # expanded (block) coordinates
    for level, expanded_dim in enumerate(order):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == DimensionType.DENSE:
            size = meta.DenseSize()
            child = np.arange(size, dtype=np.int64)
            positions = (positions[:, None] * size + child[None, :]).reshape(-1)
            coords = np.repeat(coords, size, axis=0)
            coords[:, expanded_dim] = np.tile(child, len(coords) // size)
        else:
            segments = _index_vector(meta.ArraySegments(), meta.ArraySegmentsType())
            indices = _index_vector(meta.ArrayIndices(), meta.ArrayIndicesType())
            starts, ends = segments[positions], segments[positions + 1]
            counts = ends - starts
            parent = np.repeat(np.arange(len(positions)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            positions = starts[parent] + offsets
            coords = coords[parent]
            coords[:, expanded_dim] = indices[positions]
    dense_coords = coords[:, :rank].copy()
    for block, dim in enumerate(block_map):
        block_size = sparsity.DimMetadata(order.index(rank + block)).DenseSize()
        dense_coords[:, dim] = dense_coords[:, dim] * block_size + coords[:, rank + block]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(dense_coords.T)] = values[positions]
    return dense


def _dequantize(g: _Graph, index: int, values: np.ndarray) -> np.ndarray:
    if values.dtype == np.float16:
        return values.astype(np.float32)
    quant = g.tensor(index).Quantization()
    scale = quant.ScaleAsNumpy().astype(np.float32)
    zero = quant.ZeroPointAsNumpy().astype(np.float32)
    if scale.size > 1:  # per-channel
        shape = [1] * values.ndim
        shape[quant.QuantizedDimension()] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


def _fold_constants(g: _Graph, op_name: str, op: tflite.Operator) -> bool:
    """Evaluate DEQUANTIZE/DENSIFY on constants at conversion time; True when folded."""
    if op_name not in ("DEQUANTIZE", "DENSIFY"):
        return False
    source, target = op.Inputs(0), op.Outputs(0)
    values = g.constants.get(source)
    if values is None:
        raise g.fail(f"{op_name} of a non-constant tensor is not supported")
    if op_name == "DENSIFY":
        g.constants[target] = densify(values, g.shape(source), g.tensor(source).Sparsity())
    else:
        g.constants[target] = _dequantize(g, source, values)
    return True


# --- helpers to reference tensors in NCHW / as constants --------------------------------------
def _const_or_name(g: _Graph, index: int) -> str:
    """ONNX name for a TFLite tensor; constants become fp32 initializers (rank-4 ones NCHW)."""
    if index not in g.constants:
        return g.name(index)
    value = g.constants[index]
    if value.dtype in (np.float16, np.float64):
        value = value.astype(np.float32)
    if value.ndim == 4:
        value = value.transpose(NHWC_TO_NCHW)
    return g.initializer(value, "c")


def _broadcast_operand(g: _Graph, index: int, other_rank: int) -> str:
    """Elementwise operand; a per-channel constant (shape (C,) or (1,…,1,C)) next to a rank-4
    tensor becomes (C, 1, 1) so that it broadcasts over NCHW."""
    if index not in g.constants or other_rank != 4:
        return _const_or_name(g, index)
    value = g.constants[index].astype(np.float32)
    if value.ndim in (0, 4):
        return _const_or_name(g, index)
    channels = value.shape[-1]
    if value.size != channels:
        raise g.fail(f"elementwise constant of shape {value.shape} next to a rank-4 tensor")
    return g.initializer(value.reshape(channels, 1, 1), "c")


def _activation(g: _Graph, fused: int, raw: str, out: str) -> None:
    if fused == ActivationFunctionType.NONE:
        g.node("Identity", [raw], [out])
    elif fused == ActivationFunctionType.RELU:
        g.node("Relu", [raw], [out])
    elif fused == ActivationFunctionType.RELU6:
        g.node("Clip", [raw, g.initializer(np.float32(0)), g.initializer(np.float32(6))], [out])
    elif fused == ActivationFunctionType.RELU_N1_TO_1:
        g.node("Clip", [raw, g.initializer(np.float32(-1)), g.initializer(np.float32(1))], [out])
    elif fused == ActivationFunctionType.TANH:
        g.node("Tanh", [raw], [out])
    else:
        raise g.fail(f"fused activation {fused} is not supported")


def _same_pads(
    in_hw: list[int], kernel_hw: list[int], strides: list[int], dilations: list[int]
) -> list[int]:
    """TFLite SAME padding as ONNX [top, left, bottom, right]."""
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel_hw, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _options(op: tflite.Operator, options_class):
    table = op.BuiltinOptions()
    options = options_class()
    options.Init(table.Bytes, table.Pos)
    return options


# --- op translators ---------------------------------------------------------------------------
def _conv(g: _Graph, op, depthwise: bool) -> None:
    x, w_index = op.Inputs(0), op.Inputs(1)
    options = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
    weights = g.constants[w_index].astype(np.float32)  # OHWI, or 1HW(C*M) for depthwise
    in_shape = g.shape(x)
    channels_in = in_shape[3]
    if depthwise:
        weights = weights.transpose(3, 0, 1, 2)  # (C*M, 1, H, W)
        group = channels_in
    else:
        weights = weights.transpose(0, 3, 1, 2)
        group = 1
    strides = [options.StrideH(), options.StrideW()]
    dilations = [options.DilationHFactor(), options.DilationWFactor()]
    kernel = list(weights.shape[2:])
    pads = (
        _same_pads(in_shape[1:3], kernel, strides, dilations)
        if options.Padding() == Padding.SAME
        else [0, 0, 0, 0]
    )
    inputs = [g.name(x), g.initializer(weights, "w")]
    if op.InputsLength() > 2 and op.Inputs(2) >= 0:
        inputs.append(g.initializer(g.constants[op.Inputs(2)].astype(np.float32), "b"))
    raw = g.fresh("conv")
    g.node(
        "Conv",
        inputs,
        [raw],
        kernel_shape=kernel,
        strides=strides,
        dilations=dilations,
        pads=pads,
        group=group,
    )
    _activation(g, options.FusedActivationFunction(), raw, g.name(op.Outputs(0)))


def _pool(g: _Graph, op, onnx_op: str) -> None:
    x = op.Inputs(0)
    options = _options(op, tflite.Pool2DOptions)
    kernel = [options.FilterHeight(), options.FilterWidth()]
    strides = [options.StrideH(), options.StrideW()]
    pads = (
        _same_pads(g.shape(x)[1:3], kernel, strides, [1, 1])
        if options.Padding() == Padding.SAME
        else [0, 0, 0, 0]
    )
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    if onnx_op == "AveragePool":
        attrs["count_include_pad"] = 0  # TFLite averages only the real pixels
    raw = g.fresh("pool")
    g.node(onnx_op, [g.name(x)], [raw], **attrs)
    _activation(g, options.FusedActivationFunction(), raw, g.name(op.Outputs(0)))


def _binary(g: _Graph, op, onnx_op: str, options_class) -> None:
    a, b = op.Inputs(0), op.Inputs(1)
    rank = max(len(g.shape(a)), len(g.shape(b)))
    raw = g.fresh(onnx_op.lower())
    g.node(onnx_op, [_broadcast_operand(g, a, rank), _broadcast_operand(g, b, rank)], [raw])
    fused = ActivationFunctionType.NONE
    if op.BuiltinOptions() is not None:
        fused = _options(op, options_class).FusedActivationFunction()
    _activation(g, fused, raw, g.name(op.Outputs(0)))


def _pad(g: _Graph, op) -> None:
    x = op.Inputs(0)
    paddings = g.constants[op.Inputs(1)].astype(np.int64)  # (rank, 2) in NHWC order
    if len(g.shape(x)) == 4:
        paddings = paddings[list(NHWC_TO_NCHW)]
    pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
    g.node("Pad", [g.name(x), g.initializer(pads, "pads")], [g.name(op.Outputs(0))])


def _reshape(g: _Graph, op) -> None:
    x, out = op.Inputs(0), op.Outputs(0)
    source = g.name(x)
    if len(g.shape(x)) == 4:  # reshape follows NHWC element order
        source = g.fresh("nhwc")
        g.node("Transpose", [g.name(x)], [source], perm=list(NCHW_TO_NHWC))
    target_shape = np.array(g.shape(out), dtype=np.int64)
    if len(target_shape) == 4:
        reshaped = g.fresh("reshaped")
        g.node("Reshape", [source, g.initializer(target_shape, "shape")], [reshaped])
        g.node("Transpose", [reshaped], [g.name(out)], perm=list(NHWC_TO_NCHW))
    else:
        g.node("Reshape", [source, g.initializer(target_shape, "shape")], [g.name(out)])


def _concat(g: _Graph, op) -> None:
    options = _options(op, tflite.ConcatenationOptions)
    rank = len(g.shape(op.Outputs(0)))
    axis = options.Axis() % rank
    if rank == 4:
        axis = NHWC_TO_NCHW.index(axis)
    inputs = [_const_or_name(g, op.Inputs(i)) for i in range(op.InputsLength())]
    raw = g.fresh("concat")
    g.node("Concat", inputs, [raw], axis=axis)
    _activation(g, options.FusedActivationFunction(), raw, g.name(op.Outputs(0)))


def _mean(g: _Graph, op) -> None:
    x = op.Inputs(0)
    rank = len(g.shape(x))
    axes = [int(a) % rank for a in np.atleast_1d(g.constants[op.Inputs(1)])]
    if rank == 4:
        axes = [NHWC_TO_NCHW.index(a) for a in axes]
    keep = _options(op, tflite.ReducerOptions).KeepDims()
    out_rank = len(g.shape(op.Outputs(0)))
    if not keep and rank == 4 and out_rank == 4:
        raise g.fail("MEAN without keep_dims on a rank-4 result is not supported")
    g.node(
        "ReduceMean",
        [g.name(x), g.initializer(np.array(axes, np.int64), "axes")],
        [g.name(op.Outputs(0))],
        keepdims=int(keep),
    )


def _resize_bilinear(g: _Graph, op) -> None:
    options = _options(op, tflite.ResizeBilinearOptions)
    if options.AlignCorners():
        mode = "align_corners"
    elif options.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    out_shape = g.shape(op.Outputs(0))
    sizes = np.array([out_shape[0], out_shape[3], out_shape[1], out_shape[2]], np.int64)
    g.node(
        "Resize",
        [g.name(op.Inputs(0)), "", "", g.initializer(sizes, "sizes")],
        [g.name(op.Outputs(0))],
        mode="linear",
        coordinate_transformation_mode=mode,
    )


def _depth_to_space(g: _Graph, op) -> None:
    block = _options(op, tflite.DepthToSpaceOptions).BlockSize()
    # TFLite's channel order within a block is ONNX's DCR mode.
    g.node(
        "DepthToSpace", [g.name(op.Inputs(0))], [g.name(op.Outputs(0))], blocksize=block, mode="DCR"
    )


def _prelu(g: _Graph, op) -> None:
    x = op.Inputs(0)
    slope = _broadcast_operand(g, op.Inputs(1), len(g.shape(x)))
    g.node("PRelu", [g.name(x), slope], [g.name(op.Outputs(0))])


def _transpose_conv_bias(g: _Graph, op) -> None:
    """MediaPipe's Convolution2DTransposeBias: transpose conv (OHWI weights) + bias."""
    options = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), dtype=np.int32)
    padding, stride_w, stride_h = (int(v) for v in options[:3])
    x, out = op.Inputs(0), op.Outputs(0)
    weights = g.constants[op.Inputs(1)].astype(np.float32)  # (O, H, W, I)
    bias = g.constants[op.Inputs(2)].astype(np.float32)
    kernel = list(weights.shape[1:3])
    in_hw, out_hw = g.shape(x)[1:3], g.shape(out)[1:3]
    strides = [stride_h, stride_w]
    pads_begin, pads_end = [], []
    for size_in, size_out, k, s in zip(in_hw, out_hw, kernel, strides, strict=True):
        total = max((size_in - 1) * s + k - size_out, 0)
        if padding != Padding.SAME:
            total = (size_in - 1) * s + k - size_out
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    g.node(
        "ConvTranspose",
        [g.name(x), g.initializer(weights.transpose(3, 0, 1, 2), "w"), g.initializer(bias, "b")],
        [g.name(out)],
        kernel_shape=kernel,
        strides=strides,
        pads=pads_begin + pads_end,
    )


def _unary(onnx_op: str) -> Callable:
    def translate(g: _Graph, op) -> None:
        g.node(onnx_op, [g.name(op.Inputs(0))], [g.name(op.Outputs(0))])

    return translate


_TRANSLATORS: dict[str, Callable] = {
    "CONV_2D": lambda g, op: _conv(g, op, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, op: _conv(g, op, depthwise=True),
    "MAX_POOL_2D": lambda g, op: _pool(g, op, "MaxPool"),
    "AVERAGE_POOL_2D": lambda g, op: _pool(g, op, "AveragePool"),
    "ADD": lambda g, op: _binary(g, op, "Add", tflite.AddOptions),
    "MUL": lambda g, op: _binary(g, op, "Mul", tflite.MulOptions),
    "PAD": _pad,
    "RESHAPE": _reshape,
    "CONCATENATION": _concat,
    "MEAN": _mean,
    "RESIZE_BILINEAR": _resize_bilinear,
    "DEPTH_TO_SPACE": _depth_to_space,
    "PRELU": _prelu,
    "RELU": _unary("Relu"),
    "LOGISTIC": _unary("Sigmoid"),
    "HARD_SWISH": _unary("HardSwish"),
    "CUSTOM:Convolution2DTransposeBias": _transpose_conv_bias,
}
SUPPORTED_OPS = frozenset(_TRANSLATORS) | {"DEQUANTIZE", "DENSIFY"}


def _op_name(model: tflite.Model, op: tflite.Operator) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = _OP_NAMES.get(builtin, str(builtin))
    if name == "CUSTOM":
        name += ":" + code.CustomCode().decode()
    return name


def list_ops(tflite_bytes: bytes) -> list[str]:
    """Names of the ops in the model's main subgraph, in execution order."""
    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    subgraph = model.Subgraphs(0)
    return [_op_name(model, subgraph.Operators(i)) for i in range(subgraph.OperatorsLength())]


def _value_info(g: _Graph, index: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(
        g.tensor(index).Name().decode(), TensorProto.FLOAT, g.shape(index)
    )


def convert_tflite(tflite_bytes: bytes, model_name: str) -> onnx.ModelProto:
    """Translate one TFLite model (single subgraph, float graph I/O) to a checked ONNX model."""
    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    if model.SubgraphsLength() != 1:
        raise ConversionError(f"model {model_name!r}: expected one subgraph")
    g = _Graph(model, model.Subgraphs(0), model_name)
    ops = [g.subgraph.Operators(i) for i in range(g.subgraph.OperatorsLength())]
    unsupported = sorted({_op_name(model, op) for op in ops} - SUPPORTED_OPS)
    if unsupported:
        raise ConversionError(
            f"model {model_name!r}: unsupported TFLite op(s): {', '.join(unsupported)}"
        )
    for index in range(g.subgraph.TensorsLength()):
        values = _buffer_array(g, index)
        if values is not None:
            g.constants[index] = values

    graph_inputs = [int(i) for i in g.subgraph.InputsAsNumpy()]
    graph_outputs = [int(i) for i in g.subgraph.OutputsAsNumpy()]
    for index in graph_inputs:  # NHWC graph input → NCHW inside
        external = g.tensor(index).Name().decode()
        if len(g.shape(index)) == 4:
            g.node("Transpose", [external], [g.name(index)], perm=list(NHWC_TO_NCHW))
        else:
            g.node("Identity", [external], [g.name(index)])

    for op in ops:
        name = _op_name(model, op)
        if _fold_constants(g, name, op):
            continue
        _TRANSLATORS[name](g, op)

    for index in graph_outputs:
        external = g.tensor(index).Name().decode()
        if len(g.shape(index)) == 4:
            g.node("Transpose", [g.name(index)], [external], perm=list(NCHW_TO_NHWC))
        else:
            g.node("Identity", [g.name(index)], [external])

    graph = helper.make_graph(
        g.nodes,
        model_name,
        [_value_info(g, i) for i in graph_inputs],
        [_value_info(g, i) for i in graph_outputs],
        initializer=g.initializers,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="relight-tflite2onnx",
        producer_version=CONVERTER_VERSION,
    )
    onnx_model.ir_version = 8  # readable by onnxruntime ≥ 1.14
    onnx.checker.check_model(onnx_model)
    return onnx_model
