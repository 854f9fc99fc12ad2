"""The network as a whole: the synthetic seed and demo activity, the 2024 reference
figures, the CLI summary.
"""
