"""Detectors: the CNN-LSTM of the paper and the baselines, behind one small interface (``base.Detector``)."""
