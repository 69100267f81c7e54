"""Values every layer agrees on. A leaf module: it imports nothing, so the kernels, nn and the
dependency-free data layer can all take them from here."""

IGNORE_INDEX = -100  # the label / target value that takes no loss (torch's cross_entropy ignore_index default)
