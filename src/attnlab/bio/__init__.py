"""The biological sequences lab: protein / DNA tokenizers, sequence data sets, metrics,
controls, pooling, probes and an embedding cache.

The workflow follows Protify-style probing (and the linear-probe tradition of Rives et
al. 2021, "Biological structure and function emerge from scaling unsupervised learning
to 250 million protein sequences"): embed sequences with a protein language model, train
small probes on the frozen embeddings, and compare against simple controls (one-hot,
amino-acid composition, a randomly initialised model) over several seeds.

Modules (import the one you need; this package imports nothing heavy on its own):
    attnlab.bio.tokenizers         ProteinTokenizer ("protein", ESM-2 ids), DNATokenizer ("dna"), RNATokenizer ("rna")
    attnlab.bio.data               SequenceDataset, FASTA/CSV loaders, de-duplication, splits, LabelEncoder, load_amp
                                   (a package: labels, dataset, readers, sources, cleaning, splits)
    attnlab.bio.metrics            accuracy, macro-F1, MCC, ROC-AUC, Spearman, Pearson, R^2, RMSE, seed aggregation
    attnlab.bio.embedder_base      SequenceEmbedder (the interface every embedder follows), compute_embeddings()
    attnlab.bio.embedders          embedders by name: make_embedder(), the protein language model embedder
    attnlab.bio.controls           one-hot and composition control embeddings
    attnlab.bio.pooling            mean / max / CLS / learned attention pooling (PyTorch)
    attnlab.bio.probe_kinds        ProbeConfig and the registry of probe kinds (built-in kinds imported lazily)
    attnlab.bio.probe_modules      linear, MLP and attention probe modules
    attnlab.bio.transformer_probe  the transformer probe and attention pooling + MLP
    attnlab.bio.probes             Probe (predict, save, load) and fit_probe() with early stopping
    attnlab.bio.cache              EmbeddingCache: embeddings on disk (safetensors), keyed by a hash
"""
