"""Architecture comparisons for the vision and sequence labs.

    from attnlab.compare.mnist import MnistCompareConfig, compare_mnist
    from attnlab.compare.sequence import SequenceCompareConfig, compare_sequence

`compare_mnist` trains a ViT, a ConvNet and an MLP of similar size on the same images
and writes accuracies, timings, learning curves, confusion matrices, misclassified
digits and ViT attention maps. `compare_sequence` trains RNN / LSTM / GRU and a small
transformer on the long-range recall task and writes accuracy against distance, the
gradient reaching each earlier step, and training time. `attnlab compare ...` on the
command line calls these functions.
"""
