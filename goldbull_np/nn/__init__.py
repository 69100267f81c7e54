"""Neural-network building blocks (``goldbull_np.nn``) and the functional API (``nn.functional``)."""
from . import functional  # noqa: F401
