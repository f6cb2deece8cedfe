"""The voice encoder on ONNX Runtime: the same weights, a C++ loop instead of a Python one.

``VoiceEncoder`` runs the LSTM's 480 time steps (160 frames, 3 layers) in
Python: each numpy call is cheap, but there are about 5,000 of them per
call whatever the batch, about 70 ms of one core that also holds the GIL,
which a server's event loop needs. Here the same network is an ONNX graph
built once from the weights (the ``onnx`` package's standard LSTM op, in
memory: no file to cache or trust) and run by ONNX Runtime, which
faster-whisper already installs, on one thread with the GIL released. Its
output is checked against the numpy reference in the tests.
"""

from __future__ import annotations

import numpy as np

from .encoder import HIDDEN, LAYERS, VoiceEncoder
from .features import N_MELS
from .weights import load_weights

OPSET = 17


def _onnx_gates(weights: np.ndarray) -> np.ndarray:
    """torch's gate rows (input, forget, cell, output) in ONNX's order (input, output, forget, cell)."""
    i, f, cell, o = np.split(np.asarray(weights, dtype=np.float32), 4, axis=0)
    gates: np.ndarray = np.concatenate([i, o, f, cell], axis=0)
    return gates


def build_graph(weights: dict[str, np.ndarray]) -> bytes:
    """The encoder as a serialised ONNX model: (batch, frames, 40) mel windows -> (batch, 256) unit embeddings."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(np.ascontiguousarray(value), name)

    try:
        inits = [
            const("axis0", np.array([0], np.int64)),
            const("axis1", np.array([1], np.int64)),
            const("linear_w", np.asarray(weights["linear.weight"], np.float32).T),
            const("linear_b", np.asarray(weights["linear.bias"], np.float32)),
            const("eps", np.array(1e-12, np.float32)),
        ]
        for n in range(LAYERS):
            bias = np.concatenate([_onnx_gates(weights[f"lstm.bias_ih_l{n}"]), _onnx_gates(weights[f"lstm.bias_hh_l{n}"])])
            inits += [
                const(f"W{n}", _onnx_gates(weights[f"lstm.weight_ih_l{n}"])[None]),
                const(f"R{n}", _onnx_gates(weights[f"lstm.weight_hh_l{n}"])[None]),
                const(f"B{n}", bias[None]),
            ]
    except KeyError as exc:
        raise ValueError(f"the speaker encoder's weights lack {exc}") from None
    nodes = [helper.make_node("Transpose", ["mel"], ["x0"], perm=[1, 0, 2])]  # (frames, batch, 40)
    for n in range(LAYERS):
        nodes += [
            helper.make_node("LSTM", [f"x{n}", f"W{n}", f"R{n}", f"B{n}"], [f"y{n}", f"h{n}"], hidden_size=HIDDEN),
            helper.make_node("Squeeze", [f"y{n}", "axis1"], [f"x{n + 1}"]),  # (frames, batch, hidden)
        ]
    last = f"h{LAYERS - 1}"
    nodes += [
        helper.make_node("Squeeze", [last, "axis0"], ["h"]),  # the last layer's final state: (batch, hidden)
        helper.make_node("MatMul", ["h", "linear_w"], ["lin"]),
        helper.make_node("Add", ["lin", "linear_b"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["e"]),
        helper.make_node("ReduceL2", ["e"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["safe"]),
        helper.make_node("Div", ["e", "safe"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "voice_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", "frames", N_MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="stt-gateway speakers")
    serialised: bytes = model.SerializeToString()
    return serialised


class OnnxVoiceEncoder(VoiceEncoder):
    """``VoiceEncoder`` whose network runs on ONNX Runtime (the mel features stay numpy's)."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None, threads: int = 1):
        import onnxruntime

        w = weights if weights is not None else load_weights()
        super().__init__(w)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # beside CTranslate2's decodes: one core per call
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(build_graph(w), options, providers=["CPUExecutionProvider"])

    def embed_frames(self, windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.shape[0] == 0:
            return np.zeros((0, HIDDEN), np.float32)
        (embedding,) = self._session.run(["embedding"], {"mel": x})
        result: np.ndarray = embedding
        return result
