from .series import Checkpoint, CheckpointSeries, load_series
