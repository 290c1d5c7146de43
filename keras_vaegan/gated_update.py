"""An optimizer update taken or skipped on a flag that every replica agrees on.

A skipped update costs no backward pass and leaves the weights and the
optimizer's state (moments, iteration count) exactly as they were, as in
PyTorch's `if gate_open: loss.backward(); optimizer.step()`.

Under a strategy that merges (mirrored), `optimizer.apply` all-reduces the
gradients through a merge call, which a replica-context `tf.cond` cannot hold.
The cond is then taken in cross-replica context and enters the replicas again,
as Keras' LossScaleOptimizer skips non-finite steps.
"""

import tensorflow as tf


def gradients_if(gate_open, tape, loss, variables):
    """`tape`'s gradients of `loss` while `gate_open`; zeros, without the backward pass, when closed.

    Not for networks whose backward pass all-reduces (synchronized BatchNorm): a cond cannot hold that.
    """
    return tf.cond(gate_open, lambda: tape.gradient(loss, variables), lambda: [tf.zeros_like(v) for v in variables])


def apply_if(gate_open, optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)` while `gate_open` (a bool tensor, equal on every replica)."""

    def apply(gradients):
        optimizer.apply(gradients, variables)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(gate_open, lambda: apply(gradients), lambda: None)
        return

    def cross_replica(strategy, gate_open, gradients):
        taken = strategy.experimental_local_results(gate_open)[0]
        tf.cond(taken, lambda: strategy.extended.call_for_each_replica(apply, args=(gradients,)), lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(gate_open, gradients))
