"""An optimizer step taken or skipped on a flag that every replica agrees on.

A skipped step costs no backward pass and leaves the weights and the
optimizer's state (moments, iteration count) exactly as they were, as in
PyTorch's `if gate_open: loss.backward(); optimizer.step()`.

Under a strategy with several replicas that merges (mirrored), the update
cannot sit in a replica-context `tf.cond`: `optimizer.apply` all-reduces the
gradients through a merge call. There the backward pass stays in the cond,
and the update's cond is taken in cross-replica context, entering the
replicas again, as Keras' LossScaleOptimizer skips non-finite steps.
"""

import tensorflow as tf


def _merges():
    """Whether this replica's all-reduces go through merge calls between several replicas."""
    several = tf.distribute.get_replica_context().num_replicas_in_sync > 1
    return several and not tf.__internal__.distribute.strategy_supports_no_merge_call()


def minimize_if(gate_open, optimizer, tape, loss, variables, backward_syncs=False):
    """Steps `optimizer` on `tape`'s gradients of `loss` while `gate_open` (a bool tensor, equal on every
    replica). `backward_syncs`: the backward pass all-reduces (synchronized BatchNorm), which a cond
    cannot hold under mirrored replicas; it is then computed on every step."""
    if not _merges():
        tf.cond(gate_open, lambda: optimizer.apply(tape.gradient(loss, variables), variables), lambda: None)
        return
    if backward_syncs:
        gradients = tape.gradient(loss, variables)
    else:
        gradients = tf.cond(gate_open, lambda: tape.gradient(loss, variables),
                            lambda: [tf.zeros_like(v) for v in variables])

    def step(gradients):
        optimizer.apply(gradients, variables)

    def cross_replica(strategy, gate_open, gradients):
        taken = strategy.experimental_local_results(gate_open)[0]
        tf.cond(taken, lambda: strategy.extended.call_for_each_replica(step, args=(gradients,)), lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(gate_open, gradients))
