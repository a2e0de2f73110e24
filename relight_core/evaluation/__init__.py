"""Quality evaluation: error metrics per layer and synthetic scenes with exact ground truth."""
