"""The biological sequences lab: protein / DNA tokenizers, sequence data sets, metrics,
controls, pooling, probes and an embedding cache.

The workflow follows Protify-style probing (and the linear-probe tradition of Rives et
al. 2021, "Biological structure and function emerge from scaling unsupervised learning
to 250 million protein sequences"): embed sequences with a protein language model, train
small probes on the frozen embeddings, and compare against simple controls (one-hot,
amino-acid composition, a randomly initialised model) over several seeds.

Modules (import the one you need; this package imports nothing heavy on its own):
    attnlab.bio.tokenizers  ProteinTokenizer ("protein", ESM-2 ids), DNATokenizer ("dna"), RNATokenizer ("rna")
    attnlab.bio.data        SequenceDataset, FASTA/CSV loaders, de-duplication, splits, LabelEncoder, load_amp
    attnlab.bio.metrics     accuracy, macro-F1, MCC, ROC-AUC, Spearman, Pearson, R^2, RMSE, seed aggregation
    attnlab.bio.embedding   SequenceEmbedder (the interface every embedder follows) and embed()
    attnlab.bio.controls    one-hot and composition control embeddings
    attnlab.bio.pooling     mean / max / CLS / learned attention pooling (PyTorch)
    attnlab.bio.probes      linear, MLP and attention probes with early stopping; fit_probe()
    attnlab.bio.cache       EmbeddingCache: embeddings on disk (safetensors), keyed by a hash
"""
