"""A workload's Keras model written out for K members at once: the forward pass of a stack.

A stack holds each trainable weight of the model once per member, stacked along a leading
member axis (a Dense kernel ``(K, in, out)``, its bias ``(K, out)``), and feeds every member its
own batch: activations are ``(K, batch, ...)``. Layer by layer, what a member computes is what
its separate run's ``model(x, training=True)`` computes (``keras.Sequential`` calls each layer
on the previous one's output):

- ``Dense``: ``activation(x @ kernel + bias)`` as ``Dense.call`` writes it, the K products in one
  batched matmul (``(K, b, in) @ (K, in, out)``: the separate run's GEMM once per member);
- a layer without weights (``Flatten``, ``Activation``, ``MaxPooling2D``, ``Reshape``, ...): the
  layer itself on the members' examples side by side (``(K * b, ...)``; such a layer treats each
  example alone, so this is its separate computation, bitwise);
- any other layer with trainable weights (``Conv2D``, ...): the layer's own
  ``stateless_call`` once per member, with that member's weights (its separate computation,
  bitwise; K calls one after another, so no faster than separate runs on a CPU).

Refused, with one line saying why (:func:`check_model`): a model that is not a
``keras.Sequential`` (a functional graph with branches, a subclassed model); a layer with
non-trainable state (``BatchNormalization``'s moving statistics, ``Dropout``'s random seed);
weight regularisers or constraints (they change the loss or the update outside the layers);
a dtype policy other than float32.
"""

from __future__ import annotations

from typing import Any

from clrbench.errors import ConfigError


def check_model(model: Any, where: str) -> None:
    """ConfigError (one line naming ``where``, the workload, and why) unless ``model`` can be
    written out by :class:`StackedLayers`."""
    import keras

    reason = _refusal(model, keras)
    if reason is not None:
        raise ConfigError(f"{where} cannot be stacked: {reason}; train it with --no-stack")


def _refusal(model: Any, keras: Any) -> str | None:
    if not isinstance(model, keras.Sequential):
        return f"its model is a {type(model).__name__}, a stack writes out a keras.Sequential"
    for layer in model.layers:
        name = f"layer {layer.name} ({type(layer).__name__})"
        if layer.non_trainable_variables or getattr(layer, "seed_generator", None) is not None:
            return f"{name} has non-trainable state (statistics or a random seed)"
        if getattr(layer, "dtype_policy", None) is not None and layer.dtype_policy.name not in (
            "float32",
        ):
            return f"{name} computes in {layer.dtype_policy.name}, a stack in float32"
        for attribute in (
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ):
            if getattr(layer, attribute, None) is not None:
                return f"{name} has a {attribute.replace('_', ' ')}"
        if isinstance(layer, keras.layers.Dense) and (
            getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None)
        ):
            return f"{name} is quantized or has LoRA weights"
    return None


class StackedLayers:
    """The forward pass of K members of ``model`` (checked by :func:`check_model`): ``call``
    takes each member's trainable weights stacked (in ``model.trainable_variables``' order)
    and a ``(K, batch, ...)`` input, and returns ``(K, batch, classes)`` probabilities."""

    def __init__(self, model: Any, size: int):
        import keras

        self.model = model  # kept: the layers are called
        self.size = size
        positions = {id(v): i for i, v in enumerate(model.trainable_variables)}
        self.steps: list[tuple[str, Any, list[int]]] = []
        for layer in model.layers:
            indices = [positions[id(v)] for v in layer.trainable_variables]
            kind = "dense" if isinstance(layer, keras.layers.Dense) else "each"
            if not indices:
                kind = "weightless"
            self.steps.append((kind, layer, indices))

    @property
    def weighted_kinds(self) -> set[str]:
        """Which ways of stacking this model's weighted layers take (``each``: per member)."""
        return {kind for kind, _, indices in self.steps if indices}

    def call(self, weights: list[Any], x: Any, training: bool) -> Any:
        import tensorflow as tf

        h = x
        for kind, layer, indices in self.steps:
            if kind == "dense":
                h = self._dense(layer, [weights[i] for i in indices], h)
            elif kind == "weightless":
                shape = tf.shape(h)
                merged = tf.reshape(h, tf.concat([[-1], shape[2:]], 0))
                out = layer(merged, training=training)  # __call__ passes it on only if taken
                h = tf.reshape(out, tf.concat([shape[:2], tf.shape(out)[1:]], 0))
            else:
                # ``training`` only for a layer whose call takes it (Keras' own rule)
                flag = {"training": training} if layer._call_has_training_arg else {}
                h = tf.stack(
                    [
                        layer.stateless_call([weights[i][k] for i in indices], [], h[k], **flag)[0]
                        for k in range(self.size)
                    ]
                )
        return h

    @staticmethod
    def _dense(layer: Any, weights: list[Any], h: Any) -> Any:
        """``Dense.call`` per member: ``activation(h @ kernel + bias)`` (rank > 3 inputs are
        flattened to (K, rows, in) for the batched matmul and shaped back)."""
        import tensorflow as tf

        kernel = weights[0]
        rank = h.shape.rank
        shape = tf.shape(h)
        if rank != 3:
            h = tf.reshape(h, [shape[0], -1, shape[-1]])
        out = tf.matmul(h, kernel)
        if layer.use_bias:
            out = _add_bias(out, weights[1])
        if rank != 3:
            out = tf.reshape(out, tf.concat([shape[:-1], [kernel.shape[-1]]], 0))
        return layer.activation(out) if layer.activation is not None else out


def _add_bias(h: Any, bias: Any) -> Any:
    """``h + bias`` per member (``h``: (K, rows, n), ``bias``: (K, n)), with the bias's gradient
    summed over each member's rows by its own ``reduce_sum(g_k, axis=0)``: the op and the
    shapes of the separate run's gradient of ``x + bias``. (The gradient autodiff would take,
    one ``reduce_sum`` over axis 1 of (K, rows, n), adds a member's rows in an order that
    depends on its place in the stack: measured, members 1 and 3 of 4 differed by an ulp.)"""
    import tensorflow as tf

    @tf.custom_gradient
    def add(h, bias):
        def gradient(g):
            rows = [tf.reduce_sum(g[k], axis=0) for k in range(g.shape[0])]
            return g, tf.stack(rows)

        return h + bias[:, tf.newaxis, :], gradient

    return add(h, bias)
