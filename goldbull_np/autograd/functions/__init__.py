"""Op families, one file each: elementwise, reduce, movement, linalg, nn. Importing this package
attaches the Tensor methods and operators."""
from . import elementwise, reduce, movement, linalg  # noqa: F401  (attach Tensor methods)
