"""``podium train``: fine-tune a torchvision classifier (``--arch``; ResNet50 by default) on a
folder in the data set's layout.

Writes a checkpoint ``podium export`` reads, with its labels, history and curves beside it.
"""

from podium.train.loop import EpochFigures, TrainOptions, TrainResult, train_model

# demo: the demo's own model, trained on the bundled photographs (`podium demo`; the bench's judge)
__all__ = ["EpochFigures", "TrainOptions", "TrainResult", "demo", "train_model"]
