"""The audio family: SHD-layout data and the embedded digits, DelRec / ConvDelRec, training."""
