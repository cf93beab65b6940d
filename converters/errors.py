"""User-facing converter errors: what is wrong, where, and what to do."""


class ConvertError(ValueError):
    """A model or bundle the converter cannot handle; the message names the op/tensor/figures."""
