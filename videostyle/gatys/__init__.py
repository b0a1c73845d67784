"""The optimising engine: Gatys et al.'s losses on VGG-19 features, the stylizer and its tiles, L-BFGS, memory planning."""
