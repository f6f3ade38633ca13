"""TensorFlow step strategies; the only part of steploop that imports TensorFlow.

* ``MinimizeStep(loss, var_list, optimizer)``: the ``optimizer.minimize`` step, also on Keras 3
  optimizers (which lost ``minimize``); reports no gradients.
* ``TapeStep(loss, optimizer, var_list=None, watch_accessed_variables=True)``: gradient tape +
  ``apply_gradients``; reports the gradients.
* ``PersistentTapeStep(forward, optimizer, var_list=None, ...)``: one persistent tape, the
  gradients of several named targets, released right after the step's callbacks.

Each takes ``compile=True`` (the step runs as a ``tf.function``) or ``compile=False`` (eager).
``loss``/``forward`` take no argument, or the batch when the Trainer has ``data``.
"""

from steploop.tf.minimize import MinimizeStep
from steploop.tf.naming import unique_names, variable_name
from steploop.tf.persistent import PersistentTapeStep
from steploop.tf.tape import TapeStep

__all__ = ["MinimizeStep", "PersistentTapeStep", "TapeStep", "unique_names", "variable_name"]
