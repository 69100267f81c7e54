"""The confusion-matrix PNG (needs the ``plot`` extra, matplotlib)."""
import numpy as np


def save_confusion_matrix_png(confusion, class_names, path, title="confusion matrix"):
    """Write a (C, C) confusion matrix (rows = true class, columns = predicted) as a PNG heat map with
    the counts in the cells. Raises ImportError (naming the ``plot`` extra) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the confusion-matrix PNG needs matplotlib: pip install 'goldbull_np[plot]'") from None
    conf = np.asarray(confusion)
    C = conf.shape[0]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * C + 2), max(3.5, 0.5 * C + 1.5)))
    im = ax.imshow(conf, cmap="Blues")
    ax.set_xticks(range(C), [str(n) for n in class_names], rotation=90 if C > 10 else 0)
    ax.set_yticks(range(C), [str(n) for n in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if C <= 30:
        hi = conf.max() if conf.size else 0
        for i in range(C):
            for j in range(C):
                ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if conf[i, j] > hi / 2 else "black")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
